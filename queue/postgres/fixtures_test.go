package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/scheduler"
)

// This file holds the fixtures the package's tests share: stores on a
// database of their own, nodes and tasks, plans, and "run it on this node".

// newStore opens a Store on a fresh database of its own.
// newStore runs the test in parallel with the others and gives it a store
// on a database of its own, and a context.
func newStore(t *testing.T) (*Store, context.Context) {
	t.Helper()
	t.Parallel()
	return openStore(t, newURL(t)), context.Background()
}

func newURL(t testing.TB) string { return pgtest.New(t) }

// openStore opens one more Store (own pool) on url, as another replica would.
func openStore(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func mustNode(t *testing.T, s *Store, name string, cap queue.Resources) queue.Node {
	t.Helper()
	n, err := s.RegisterNode(context.Background(), queue.NodeRegistration{Name: name, Capacity: cap})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustTask(t *testing.T, s *Store, r queue.Resources) queue.Task {
	t.Helper()
	tk, err := s.CreateTask(context.Background(), uuid.Nil, queue.TaskSpec{Image: "alpine", Resources: r, RestartPolicy: queue.RestartNever})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func createSpec(t *testing.T, s *Store, spec queue.TaskSpec) queue.Task {
	t.Helper()
	if spec.Image == "" {
		spec.Image = "alpine"
	}
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	tk, err := s.CreateTask(context.Background(), uuid.Nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func getTask(t *testing.T, s *Store, id uuid.UUID) queue.Task {
	t.Helper()
	tk, err := s.GetTask(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

var roomy = queue.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30}

var roomyNode = queue.Resources{CPUMillis: 4000, MemoryBytes: 4 << 30, DiskBytes: 4 << 30}

// firstFit is the simplest plan: every task on the first node in the snapshot.
func firstFit(tasks []queue.Task, snap queue.Snapshot) queue.Plan {
	nodes := snap.Nodes
	p := queue.Plan{Unplaced: map[uuid.UUID]string{}}
	for _, t := range tasks {
		if len(nodes) == 0 {
			p.Unplaced[t.ID] = "no nodes"
			continue
		}
		p.Placements = append(p.Placements, queue.Placement{TaskID: t.ID, NodeID: nodes[0].ID})
	}
	return p
}

// onNode is a plan that puts every task on one chosen node.
func onNode(id uuid.UUID) PlanFunc {
	return func(tasks []queue.Task, _ queue.Snapshot) queue.Plan {
		p := queue.Plan{Unplaced: map[uuid.UUID]string{}}
		for _, t := range tasks {
			p.Placements = append(p.Placements, queue.Placement{TaskID: t.ID, NodeID: id})
		}
		return p
	}
}

// placeOnly returns a plan that puts task on node and leaves every other
// task pending.
func placeOnly(task, node uuid.UUID) PlanFunc {
	return func(tasks []queue.Task, _ queue.Snapshot) queue.Plan {
		p := queue.Plan{Unplaced: map[uuid.UUID]string{}}
		for _, t := range tasks {
			if t.ID == task {
				p.Placements = append(p.Placements, queue.Placement{TaskID: t.ID, NodeID: node})
			} else {
				p.Unplaced[t.ID] = "held back by the test"
			}
		}
		return p
	}
}

func pass(t *testing.T, s *Store, plan PlanFunc) PassResult {
	t.Helper()
	res, err := s.SchedulePass(context.Background(), PassOpts{Batch: 100, By: "test"}, plan)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// schedPass runs one pass with the real scheduler and strategy as default.
func schedPass(t *testing.T, s *Store, strategy string) PassResult {
	t.Helper()
	sc, err := scheduler.New(strategy)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.SchedulePass(context.Background(), PassOpts{Batch: 100, By: "test", Strategy: strategy}, sc.Plan)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func reserved(t *testing.T, s *Store, id uuid.UUID) queue.Resources {
	t.Helper()
	n, err := s.GetNode(context.Background(), id.String())
	if err != nil {
		t.Fatal(err)
	}
	return n.Reserved
}

// running creates a task and takes it to running on node; it returns the lease.
func running(t *testing.T, s *Store, node uuid.UUID, spec queue.TaskSpec) queue.Lease {
	t.Helper()
	ctx := context.Background()
	if spec.Image == "" {
		spec.Image = "alpine"
	}
	spec.Normalize()
	tk, err := s.CreateTask(ctx, uuid.Nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	return runAgain(t, s, node, tk.ID)
}

// runAgain places a pending task on node, claims it and marks it running.
func runAgain(t *testing.T, s *Store, node, task uuid.UUID) queue.Lease {
	t.Helper()
	ctx := context.Background()
	if res := pass(t, s, onNode(node)); res.Placed < 1 {
		t.Fatalf("pass placed nothing: %+v", res)
	}
	claim, err := s.Claim(ctx, node, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claim.Tasks {
		if c.ID == task {
			l := c.Lease()
			if err := s.MarkRunning(ctx, l, "c-"+task.String()[:8]); err != nil {
				t.Fatal(err)
			}
			return l
		}
	}
	t.Fatalf("task %s was not claimed on node %s (claimed %d)", task, node, len(claim.Tasks))
	return queue.Lease{}
}

// runOn places task on node, claims it and marks it running; it returns the lease.
func runOn(t *testing.T, s *Store, task, node uuid.UUID) queue.Lease {
	t.Helper()
	ctx := context.Background()
	if res := pass(t, s, placeOnly(task, node)); res.Placed != 1 {
		t.Fatalf("placing %s: %+v", task, res)
	}
	claim, err := s.Claim(ctx, node, 10)
	if err != nil || len(claim.Tasks) != 1 || claim.Tasks[0].ID != task {
		t.Fatalf("claim = %+v, %v", claim.Tasks, err)
	}
	l := claim.Tasks[0].Lease()
	if err := s.MarkRunning(ctx, l, "c-"+task.String()[:8]); err != nil {
		t.Fatal(err)
	}
	return l
}

func lastEvent(t *testing.T, s *Store, id uuid.UUID) queue.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), id)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events of %s: %v (%d)", id, err, len(evs))
	}
	return evs[len(evs)-1]
}

func exec(t *testing.T, s *Store, sql string, args ...any) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// serverUptime is how long the test's PostgreSQL server has been up.
func serverUptime(t *testing.T, s *Store) time.Duration {
	t.Helper()
	var secs float64
	if err := s.pool.QueryRow(context.Background(), `SELECT extract(epoch FROM now() - pg_postmaster_start_time())::float8`).Scan(&secs); err != nil {
		t.Fatal(err)
	}
	return time.Duration(secs * float64(time.Second))
}

// threeSamplesAfterAnOldOne keeps an hour of node's stats, writes a sample
// from before that (as if written two hours ago), then reports three with
// report: the i-th at 10·i % CPU, load 0.5·i, i GiB of 8 GiB memory used and
// i MiB of 100 GiB disk.
func threeSamplesAfterAnOldOne(t *testing.T, s *Store, node uuid.UUID, report func(queue.Usage) error) {
	t.Helper()
	s.SetStatsRetention(time.Hour)
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO node_stats (node_id, at, cpu_percent, load1, memory_used_bytes,
memory_total_bytes, disk_used_bytes, disk_total_bytes) VALUES ($1, now() - interval '2 hours', 1, 1, 1, 1, 1, 1)`, node); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		u := queue.Usage{CPUPercent: float64(10 * i), Load1: 0.5 * float64(i), MemoryUsedBytes: int64(i) << 30,
			MemoryTotalBytes: 8 << 30, DiskUsedBytes: int64(i) << 20, DiskTotalBytes: 100 << 30}
		if err := report(u); err != nil {
			t.Fatal(err)
		}
	}
}

// runningOnOneOfTwo makes nodes n1 and n2 (2 cores, 4 GiB, 10 GiB disk each)
// and a task of half a core running on n1, for a test of what n2, or a stale
// lease, may not write.
func runningOnOneOfTwo(t *testing.T, s *Store) (n1, n2 queue.Node, task queue.Task, l queue.Lease) {
	t.Helper()
	n1 = mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	n2 = mustNode(t, s, "n2", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	task = mustTask(t, s, queue.Resources{CPUMillis: 500})
	return n1, n2, task, runOn(t, s, task.ID, n1.ID)
}
