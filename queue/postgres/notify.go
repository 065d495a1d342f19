package postgres

import (
	"strings"

	"github.com/google/uuid"
)

// Notification channels. Payloads stay small: listeners only need to know that
// there is something to look at, and then they read the tables.
const (
	// ChannelPending wakes schedulers when a task needs placing.
	ChannelPending = "orch_pending"
	// ChannelWake carries, as its payload, the id of every node whose agent
	// should look for work: coordinators relay it to agents that cannot
	// LISTEN (they connect through a transaction pooler).
	ChannelWake = "orch_wake"
	// ChannelJobs wakes the coordinators' job loops when a job becomes due:
	// a task of it ended, started running or changed health, a node came or
	// went (system jobs), or a user changed it (sql/00025_job_wake.sql).
	ChannelJobs = "orch_jobs"
)

// NodeChannel is the channel on which a node's agent hears about work placed
// on it and stop requests for its tasks.
func NodeChannel(node uuid.UUID) string {
	return nodeChannelPrefix + strings.ReplaceAll(node.String(), "-", "")
}

// nodeChannelPrefix starts every node channel; orch_wake_node (sql/00015)
// builds the same names, and notifies ChannelWake with the node's id too.
const nodeChannelPrefix = "orch_node_"
