package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// BenchCluster is the benchmark's cluster: n nodes of 128 cores and 512 GiB
// with a few labels and a measured load, and m pending tasks of mixed sizes
// that all fit (about 60% of the cluster's CPU).
func benchCluster(n, m int) ([]queue.Node, []queue.Task) {
	r := rand.New(rand.NewPCG(1, 2))
	at := time.Now()
	nodes := make([]queue.Node, n)
	for i := range nodes {
		nodes[i] = queue.Node{ID: uuid.Must(uuid.NewV7()), Name: fmt.Sprintf("node-%04d", i), State: queue.NodeReady,
			Capacity: queue.Resources{CPUMillis: 128_000, MemoryBytes: 512 << 30, DiskBytes: 4 << 40},
			Labels:   map[string]string{"zone": []string{"eu", "us"}[i%2]},
			Usage:    queue.Usage{CPUPercent: r.Float64() * 30, Load1: r.Float64() * 20, At: &at}}
	}
	cpus := []int64{100, 250, 500, 1000, 2000}
	mems := []int64{64 << 20, 256 << 20, 1 << 30, 2 << 30, 4 << 30}
	tasks := make([]queue.Task, m)
	for i := range tasks {
		tasks[i] = queue.Task{ID: uuid.Must(uuid.NewV7()), TaskSpec: queue.TaskSpec{Name: fmt.Sprintf("t%d", i), Image: "x",
			Resources: queue.Resources{CPUMillis: cpus[r.IntN(len(cpus))], MemoryBytes: mems[r.IntN(len(mems))], DiskBytes: 1 << 30}}}
		if i%10 == 0 {
			tasks[i].Constraints = []queue.Constraint{{Key: "zone", Op: queue.OpEqual, Value: "eu"}}
		}
	}
	return nodes, tasks
}

// BenchmarkPlan places 100,000 pending tasks on 1,000 nodes in-process, in
// passes of 500 as the coordinator does (each pass sees the previous
// passes' reservations), and reports placements per second.
//
//	go test ./scheduler -run '^$' -bench Plan -benchtime 1x
func BenchmarkPlan(b *testing.B) {
	const nodesN, tasksN, batch = 1000, 100_000, 500
	for _, strategy := range queue.Strategies {
		b.Run(strategy, func(b *testing.B) {
			s, err := New(strategy)
			if err != nil {
				b.Fatal(err)
			}
			placed := 0
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				nodes, tasks := benchCluster(nodesN, tasksN)
				index := make(map[uuid.UUID]int, len(nodes))
				for k := range nodes {
					index[nodes[k].ID] = k
				}
				snap := queue.Snapshot{Nodes: nodes}
				b.StartTimer()
				start := time.Now()
				for lo := 0; lo < len(tasks); lo += batch {
					hi := min(lo+batch, len(tasks))
					p := s.Plan(tasks[lo:hi], snap)
					for _, pl := range p.Placements {
						n := &nodes[index[pl.NodeID]]
						n.Reserved = n.Reserved.Add(tasks[lo+taskOffset(tasks[lo:hi], pl.TaskID)].Resources)
					}
					if p.RoundRobin != nil {
						snap.RoundRobin = *p.RoundRobin
					}
					placed += len(p.Placements)
				}
				elapsed += time.Since(start)
			}
			if placed != tasksN*b.N {
				b.Fatalf("placed %d of %d", placed, tasksN*b.N)
			}
			b.ReportMetric(float64(placed)/elapsed.Seconds(), "placements/s")
		})
	}
}

// taskOffset finds a task in its batch (batches are small; a map would cost
// more to build than this scan).
func taskOffset(batch []queue.Task, id uuid.UUID) int {
	for i := range batch {
		if batch[i].ID == id {
			return i
		}
	}
	panic("placed task not in batch")
}
