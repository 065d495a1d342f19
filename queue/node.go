package queue

import (
	"time"

	"github.com/google/uuid"
)

// NodeState is a node's liveness as the cluster sees it.
type NodeState string

const (
	NodeReady NodeState = "ready"
	NodeDown  NodeState = "down"
	// NodeUnhealthy is a node whose agent is alive but whose container
	// engine fails; it gets no new work.
	NodeUnhealthy NodeState = "unhealthy"
)

// Node is a machine running an agent, with what it offers and what is taken.
type Node struct {
	ID            uuid.UUID         `json:"id"`
	Name          string            `json:"name"`
	Address       string            `json:"address,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Capacity      Resources         `json:"capacity"`
	Reserved      Resources         `json:"reserved"`
	Usage         Usage             `json:"usage"`
	State         NodeState         `json:"state"`
	Cordoned      bool              `json:"cordoned"`
	LastHeartbeat time.Time         `json:"last_heartbeat"`
	RegisteredAt  time.Time         `json:"registered_at"`
	LiveTasks     int               `json:"live_tasks"`
	// HealthError says why the node is unhealthy.
	HealthError string `json:"health_error,omitempty"`
	// Draining nodes (also cordoned) are handing their tasks to other
	// nodes; whatever is left at DrainDeadline is moved at once.
	Draining       bool       `json:"draining,omitempty"`
	DrainDeadline  *time.Time `json:"drain_deadline,omitempty"`
	StateChangedAt time.Time  `json:"state_changed_at"`
}

// Free is what is left on the node for new tasks.
func (n *Node) Free() Resources { return n.Capacity.Sub(n.Reserved) }

// NodeRegistration is what an agent reports about its machine when it starts.
type NodeRegistration struct {
	Name     string
	Address  string
	Labels   map[string]string
	Capacity Resources
	// AllowPrivileged asks for the LabelAllowPrivileged label; an agent
	// with a role of its own gets it only where an admin allowed it.
	AllowPrivileged bool
}

// Usage is what a node's agent last measured on the machine.
type Usage struct {
	CPUPercent      float64    `json:"cpu_percent"` // of the whole machine, 0..100
	Load1           float64    `json:"load1"`
	MemoryUsedBytes int64      `json:"memory_used_bytes"`
	DiskUsedBytes   int64      `json:"disk_used_bytes"`
	At              *time.Time `json:"at,omitempty"`
	// The machine's totals at the time of the sample, for the history
	// (node_stats); the nodes row keeps only the latest used figures.
	MemoryTotalBytes int64 `json:"memory_total_bytes,omitempty"`
	DiskTotalBytes   int64 `json:"disk_total_bytes,omitempty"`
}
