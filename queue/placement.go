package queue

import "github.com/google/uuid"

// Placement is the scheduler's decision to put one task on one node.
type Placement struct {
	TaskID uuid.UUID
	NodeID uuid.UUID
}

// Plan is what one scheduling pass decided: the placements, and for every task
// it could not place, a reason a user can read.
type Plan struct {
	Placements []Placement
	Unplaced   map[uuid.UUID]string
	// RoundRobin is the node the round-robin strategy chose last, to be
	// stored as the cursor the next pass (on any replica) starts after; nil
	// when the pass placed nothing by round-robin.
	RoundRobin *uuid.UUID
}

// Snapshot is the cluster as one scheduling pass sees it.
type Snapshot struct {
	// Nodes is every node, in id order (the round-robin order).
	Nodes []Node
	// Ports holds, per node id, the host ports its live tasks have published.
	Ports map[uuid.UUID][]Port
	// RoundRobin is the node round-robin chose last (uuid.Nil: none yet); the
	// next round-robin task goes to the first fitting node after it.
	RoundRobin uuid.UUID
	// Volumes holds where the named volumes the pass's tasks mount live;
	// a volume not in it is new, and may go anywhere.
	Volumes map[string]VolumeHome
}
