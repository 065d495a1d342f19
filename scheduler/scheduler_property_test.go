package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// randomCluster makes a snapshot of random nodes (some full, cordoned, down,
// labelled, with host ports in use) and a batch of random tasks.
func randomCluster(r *rand.Rand) (queue.Snapshot, []queue.Task) {
	zones := []string{"eu", "us", "ap"}
	snap := queue.Snapshot{Ports: map[uuid.UUID][]queue.Port{}}
	for i := 0; i < 1+r.IntN(12); i++ {
		c := queue.Resources{CPUMillis: r.Int64N(8000), MemoryBytes: r.Int64N(16 << 30), DiskBytes: r.Int64N(100 << 30)}
		n := queue.Node{ID: uuid.New(), Name: fmt.Sprintf("n%02d", i), State: queue.NodeReady, Capacity: c,
			Labels: map[string]string{"zone": zones[r.IntN(3)]}}
		n.Reserved = queue.Resources{CPUMillis: r.Int64N(c.CPUMillis + 1), MemoryBytes: r.Int64N(c.MemoryBytes + 1), DiskBytes: r.Int64N(c.DiskBytes + 1)}
		switch r.IntN(8) {
		case 0:
			n.Cordoned = true
		case 1:
			n.State = queue.NodeDown
		}
		if r.IntN(2) == 0 {
			at := time.Unix(1_700_000_000, 0)
			n.Usage = queue.Usage{CPUPercent: r.Float64() * 100, Load1: r.Float64() * 8, MemoryUsedBytes: r.Int64N(c.MemoryBytes + 1), At: &at}
		}
		for k := 0; k < r.IntN(3); k++ {
			snap.Ports[n.ID] = append(snap.Ports[n.ID], queue.Port{HostPort: 8000 + r.IntN(4), Protocol: "tcp"})
		}
		snap.Nodes = append(snap.Nodes, n)
	}
	if r.IntN(2) == 0 {
		snap.RoundRobin = snap.Nodes[r.IntN(len(snap.Nodes))].ID
	}
	var tasks []queue.Task
	for i := 0; i < r.IntN(60); i++ {
		t := queue.Task{ID: uuid.New(), TaskSpec: queue.TaskSpec{Name: fmt.Sprintf("t%02d", i),
			Resources: queue.Resources{CPUMillis: r.Int64N(3000), MemoryBytes: r.Int64N(6 << 30), DiskBytes: r.Int64N(30 << 30)},
			Strategy:  []string{"", "binpack", "spread", "epvm", "round-robin"}[r.IntN(5)]}}
		if r.IntN(3) == 0 {
			t.Ports = []queue.Port{{ContainerPort: 80, HostPort: 8000 + r.IntN(4), Protocol: "tcp"}}
		}
		if r.IntN(4) == 0 {
			op := []string{queue.OpEqual, queue.OpNotEqual}[r.IntN(2)]
			t.Constraints = []queue.Constraint{{Key: "zone", Op: op, Value: zones[r.IntN(3)]}}
		}
		tasks = append(tasks, t)
	}
	return snap, tasks
}

// fitsNode is an independent statement of the filters: can t go on n given
// what is already used there?
func fitsNode(t *queue.Task, n *queue.Node, used queue.Resources, ports map[string]bool) bool {
	if n.State != queue.NodeReady || n.Cordoned {
		return false
	}
	for _, c := range t.Constraints {
		if !c.Matches(n.Labels) {
			return false
		}
	}
	if !n.Capacity.Fits(used.Add(t.Resources)) {
		return false
	}
	for _, p := range t.Ports {
		if p.HostPort != 0 && ports[fmt.Sprintf("%d/%s", p.HostPort, proto(p))] {
			return false
		}
	}
	return true
}

// TestPlan_Property_NeverExceedsCapacity checks, over many random clusters
// and batches and every strategy, that a plan never puts more on a node than
// it has free, never uses a cordoned or down node, a constraint-violating
// node or a held host port, places every task at most once, and only gives
// up on a task that indeed fits on no node.
func TestPlan_Property_NeverExceedsCapacity(t *testing.T) {
	for seed := uint64(0); seed < 3000; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		snap, tasks := randomCluster(r)
		def := queue.Strategies[r.IntN(len(queue.Strategies))]
		s, err := New(def)
		if err != nil {
			t.Fatal(err)
		}
		p := s.Plan(tasks, snap)

		byID := map[uuid.UUID]*queue.Task{}
		for i := range tasks {
			byID[tasks[i].ID] = &tasks[i]
		}
		nodes := map[uuid.UUID]*queue.Node{}
		used := map[uuid.UUID]queue.Resources{}
		ports := map[uuid.UUID]map[string]bool{}
		for i := range snap.Nodes {
			n := &snap.Nodes[i]
			nodes[n.ID], used[n.ID], ports[n.ID] = n, n.Reserved, map[string]bool{}
			for _, hp := range snap.Ports[n.ID] {
				ports[n.ID][fmt.Sprintf("%d/%s", hp.HostPort, proto(hp))] = true
			}
		}
		seen := map[uuid.UUID]bool{}
		for _, pl := range p.Placements {
			tk, n := byID[pl.TaskID], nodes[pl.NodeID]
			if tk == nil || n == nil || seen[pl.TaskID] {
				t.Fatalf("seed %d: placement %+v names an unknown or repeated task or node", seed, pl)
			}
			seen[pl.TaskID] = true
			if _, unplaced := p.Unplaced[pl.TaskID]; unplaced {
				t.Fatalf("seed %d: task %s both placed and unplaced", seed, tk.Name)
			}
			if !fitsNode(tk, n, used[n.ID], ports[n.ID]) {
				t.Fatalf("seed %d (%s): %s (%+v, ports %v, constraints %v) does not fit on %s (cap %+v, used %+v, cordoned %v, %s, labels %v, ports %v)",
					seed, def, tk.Name, tk.Resources, tk.Ports, tk.Constraints, n.Name, n.Capacity, used[n.ID], n.Cordoned, n.State, n.Labels, ports[n.ID])
			}
			used[n.ID] = used[n.ID].Add(tk.Resources)
			for _, hp := range tk.Ports {
				if hp.HostPort != 0 {
					ports[n.ID][fmt.Sprintf("%d/%s", hp.HostPort, proto(hp))] = true
				}
			}
		}
		for id, n := range nodes {
			if !n.Capacity.Fits(used[id]) && n.Capacity.Fits(n.Reserved) {
				t.Fatalf("seed %d: node %s over capacity: %+v > %+v", seed, n.Name, used[id], n.Capacity)
			}
		}
		// Capacity only shrinks during a plan, so a task that fit nowhere
		// when it was considered fits nowhere at the end either.
		for id, why := range p.Unplaced {
			if why == "" {
				t.Fatalf("seed %d: task %s unplaced without a reason", seed, byID[id].Name)
			}
			for nid, n := range nodes {
				if fitsNode(byID[id], n, used[nid], ports[nid]) {
					t.Fatalf("seed %d: task %s unplaced (%q) but fits on %s", seed, byID[id].Name, why, n.Name)
				}
			}
		}
		if len(p.Placements)+len(p.Unplaced) != len(tasks) {
			t.Fatalf("seed %d: %d placed + %d unplaced of %d tasks", seed, len(p.Placements), len(p.Unplaced), len(tasks))
		}
	}
}
