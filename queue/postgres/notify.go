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
)

// NodeChannel is the channel on which a node's agent hears about work placed
// on it and stop requests for its tasks.
func NodeChannel(node uuid.UUID) string {
	return nodeChannelPrefix + strings.ReplaceAll(node.String(), "-", "")
}

// nodeChannelPrefix starts every node channel; placeSQL builds the same
// names in SQL.
const nodeChannelPrefix = "orch_node_"
