package queue

import (
	"time"

	"github.com/google/uuid"
)

// RestartPolicy says what happens when a task's container exits or its node is lost.
type RestartPolicy string

const (
	RestartNever     RestartPolicy = "never"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartAlways    RestartPolicy = "always"
)

// Port publishes a container port on the node. HostPort 0 lets Docker choose.
type Port struct {
	ContainerPort int    `json:"container_port"`
	HostPort      int    `json:"host_port,omitempty"`
	Protocol      string `json:"protocol,omitempty"` // tcp (default) or udp
}

// TaskSpec is what a user asks for: everything about a task that they choose.
type TaskSpec struct {
	Name    string            `json:"name"`
	Image   string            `json:"image"`
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Secrets are given to the container as environment variables too, but
	// they are write-only: no answer, event, log line or report ever holds
	// a value (Task.SecretKeys names them), and the database holds them
	// sealed with the cluster's key (package queue/secrets).
	Secrets       map[string]string `json:"-"`
	Resources     Resources         `json:"resources"`
	RestartPolicy RestartPolicy     `json:"restart_policy,omitempty"`
	MaxRestarts   int               `json:"max_restarts,omitempty"`
	Ports         []Port            `json:"ports,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	// Strategy overrides the coordinator's placement strategy for this task
	// ("" keeps the coordinator's).
	Strategy string `json:"strategy,omitempty"`
	// Constraints restrict the task to nodes whose labels match all of them.
	Constraints []Constraint `json:"constraints,omitempty"`
	// HealthCheck, if set, is probed by the agent while the task runs.
	HealthCheck *HealthCheck `json:"health_check,omitempty"`
	// Privileged runs the container with every capability, and Network
	// "host" on the host's network stack. Both need an admin token and an
	// agent started with --allow-privileged.
	Privileged bool   `json:"privileged,omitempty"`
	Network    string `json:"network,omitempty"` // "" or "bridge" (default), "host", "none"
	// StopAfterDisconnect, if set, has the agent stop the task's container
	// once it has been out of touch with the database for this long, so that
	// a node cut off from the cluster does not keep running the task beside
	// its replacement. The task is then placed again, as for a lost node.
	StopAfterDisconnect Duration `json:"stop_after_disconnect,omitempty"`
	// PidsLimit lowers the process limit of the task's container below its
	// node's (0: the node's; a task cannot raise it).
	PidsLimit int64 `json:"pids_limit,omitempty"`
	// Volumes are named volumes (created on first use on the node the task
	// is placed on, kept after it; later tasks naming one go to that node)
	// and host paths (admin only, on agents that allow host mounts).
	Volumes []Mount `json:"volumes,omitempty"`
}

// Task is a TaskSpec as orch tracks it: the spec plus where it is and what happened.
type Task struct {
	ID uuid.UUID `json:"id"`
	TaskSpec
	DesiredState DesiredState `json:"desired_state"`
	State        State        `json:"state"`
	// SecretKeys names the task's secrets; their values are never shown.
	SecretKeys []string   `json:"secret_keys,omitempty"`
	NodeID     *uuid.UUID `json:"node_id,omitempty"`
	NodeName   string     `json:"node_name,omitempty"`
	// Attempt counts placements. Every placement bumps it, and every write an
	// agent makes names it, so a write from a superseded attempt changes nothing.
	Attempt     int        `json:"attempt"`
	Restarts    int        `json:"restarts"`
	ContainerID string     `json:"container_id,omitempty"`
	ExitCode    *int       `json:"exit_code,omitempty"`
	Error       string     `json:"error,omitempty"`
	Reason      string     `json:"reason,omitempty"` // why a pending task is not placed
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// NotBefore holds a pending task back until then: a restart waiting out
	// its backoff.
	NotBefore *time.Time `json:"not_before,omitempty"`
	// Health is what the agent last learnt from the task's health check,
	// HealthDetail the last probe's outcome, and HealthAt when it changed.
	Health       TaskHealth `json:"health,omitempty"`
	HealthDetail string     `json:"health_detail,omitempty"`
	HealthAt     *time.Time `json:"health_at,omitempty"`
	// JobID, JobVersion and JobIndex name the job a task belongs to, the
	// job's version it runs and its index in the job (its name is
	// JOB.index); nil for a task created on its own.
	JobID      *uuid.UUID `json:"job_id,omitempty"`
	JobVersion *int       `json:"job_version,omitempty"`
	JobIndex   *int       `json:"job_index,omitempty"`
	// HostPorts are the ports as published on the node for the current
	// attempt, host ports the engine chose included, once the agent has
	// recorded them.
	HostPorts []Port `json:"host_ports,omitempty"`
}

// Lease names one placement of a task: the node it is on and the attempt
// number. Agents present it with every write so stale writers are fenced off.
type Lease struct {
	TaskID  uuid.UUID
	NodeID  uuid.UUID
	Attempt int
}

// Lease returns the task's current lease. It is only meaningful for a placed task.
func (t *Task) Lease() Lease {
	l := Lease{TaskID: t.ID, Attempt: t.Attempt}
	if t.NodeID != nil {
		l.NodeID = *t.NodeID
	}
	return l
}

// Event is one row of a task's history: a state change, when and why.
type Event struct {
	ID       int64      `json:"id"`
	TaskID   uuid.UUID  `json:"task_id"`
	At       time.Time  `json:"at"`
	From     State      `json:"from,omitempty"`
	To       State      `json:"to"`
	Attempt  int        `json:"attempt"`
	NodeID   *uuid.UUID `json:"node_id,omitempty"`
	ExitCode *int       `json:"exit_code,omitempty"`
	Reason   string     `json:"reason,omitempty"`
}

// ShortID is a task id's last twelve hex digits. orch's ids are UUIDv7,
// whose leading digits are a timestamp shared by tasks made close together;
// the tail is random, so it tells tasks apart in names and tables.
func ShortID(id uuid.UUID) string {
	s := id.String()
	return s[len(s)-12:]
}

// NeedsPrivileges reports whether the spec asks for more than an ordinary
// container: privileges or the host's network.
func (s *TaskSpec) NeedsPrivileges() bool {
	return s.Privileged || s.Network == "host"
}

// LabelAllowPrivileged is the node label an agent started with
// --allow-privileged sets; the scheduler places privileged tasks only there.
const LabelAllowPrivileged = "orch.allow-privileged"
