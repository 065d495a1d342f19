package coordinator

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

func newSweepTest(t *testing.T, timeout time.Duration) (*Coordinator, *postgres.Store) {
	t.Helper()
	store, err := postgres.Open(context.Background(), pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	c, err := New(store, Options{NodeDownTimeout: timeout, Name: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c, store
}

// runningOn creates a task and takes it to running on node by hand.
func runningOn(t *testing.T, c *Coordinator, s *postgres.Store, node uuid.UUID) queue.Task {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateTask(ctx, uuid.Nil, queue.TaskSpec{Image: "alpine", RestartPolicy: queue.RestartNever,
		Resources: queue.Resources{CPUMillis: 100}}); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Pass(ctx); err != nil || res.Placed != 1 {
		t.Fatalf("pass: %+v, %v", res, err)
	}
	claimed, err := s.ClaimTasks(ctx, node, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	if err := s.MarkRunning(ctx, claimed[0].Lease(), "c1"); err != nil {
		t.Fatal(err)
	}
	return claimed[0]
}

func TestSweep_SilentNodeIsDown_ItsTaskRunsElsewhere_ANeverTaskToo(t *testing.T) {
	t.Parallel()
	c, s := newSweepTest(t, time.Second)
	ctx := context.Background()
	lost, err := s.RegisterNode(ctx, queue.NodeRegistration{Name: "lost", Capacity: queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	tk := runningOn(t, c, s, lost.ID)
	spare, err := s.RegisterNode(ctx, queue.NodeRegistration{Name: "spare", Capacity: queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	// lost falls silent; spare keeps beating.
	if _, err := s.Pool().Exec(ctx, `UPDATE nodes SET last_heartbeat = now() - interval '1 hour' WHERE id = $1`, lost.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Beat(ctx, spare.ID, postgres.NodeHealth{}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// Not yet connected for a whole timeout: nothing is declared down.
	if err := c.Sweep(ctx, false); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.GetNode(ctx, "lost"); n.State != queue.NodeReady {
		t.Fatalf("a sweep that may not mark nodes down left the node %s", n.State)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Sweep(ctx, true); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.GetNode(ctx, "lost"); n.State == queue.NodeDown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the silent node was never marked down") // the server must be up for a timeout first
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, _ := s.GetTask(ctx, tk.ID)
	if got.State != queue.Pending || !strings.Contains(got.Reason, "lost: node lost is down") {
		t.Fatalf("task after the sweep: %s (%q)", got.State, got.Reason)
	}
	if res, err := c.Pass(ctx); err != nil || res.Placed != 1 {
		t.Fatalf("pass after the sweep: %+v, %v", res, err)
	}
	got, _ = s.GetTask(ctx, tk.ID)
	if got.State != queue.Scheduled || *got.NodeID != spare.ID || got.Attempt != 2 || got.Restarts != 0 {
		t.Errorf("restart-policy-never task after its node was lost: %s on %v attempt %d restarts %d; want scheduled on spare, attempt 2, no restart",
			got.State, got.NodeID, got.Attempt, got.Restarts)
	}
	// Sweeping again changes nothing.
	if err := c.Sweep(ctx, true); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.GetTask(ctx, tk.ID); again.Attempt != 2 || again.State != queue.Scheduled {
		t.Errorf("a second sweep moved the task again: %s attempt %d", again.State, again.Attempt)
	}
}

func TestSweep_ScalesTheHeartbeatIntervalToTheLiveNodes(t *testing.T) {
	t.Parallel()
	store, err := postgres.Open(context.Background(), pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	c, err := New(store, Options{MaxHeartbeatsPerSecond: 1, Name: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []uuid.UUID
	for _, name := range []string{"a", "b", "c"} {
		n, err := store.RegisterNode(ctx, queue.NodeRegistration{Name: name, Capacity: queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.ID)
	}
	if err := c.Sweep(ctx, false); err != nil {
		t.Fatal(err)
	}
	// Three nodes, one heartbeat a second in all: each beats every 3 s.
	r, err := store.Beat(ctx, ids[0], postgres.NodeHealth{}, time.Second)
	if err != nil || r.Interval != 3*time.Second {
		t.Fatalf("after a sweep, a node beating every 1s is told %v, %v; want 3s", r.Interval, err)
	}
	if p, err := store.GetHeartbeatPolicy(ctx); err != nil || p.LiveNodes != 3 {
		t.Errorf("policy %+v, %v; want 3 live nodes", p, err)
	}
}
