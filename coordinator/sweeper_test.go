package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// newSweepTest returns a coordinator with opts (named "test") on a
// database of its own, its store and the database's URL.
func newSweepTest(t *testing.T, opts Options) (*Coordinator, *postgres.Store, string) {
	t.Helper()
	url := pgtest.New(t)
	opts.Name = "test"
	c := coordinatorOn(t, storetest.Open(t, url), opts)
	return c, c.store, url
}

// small is the capacity of the sweep tests' nodes.
var small = queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30}

func TestSweep_SilentNodeIsDown_ItsTaskRunsElsewhere_ANeverTaskToo(t *testing.T) {
	t.Parallel()
	c, s, url := newSweepTest(t, Options{NodeDownTimeout: time.Second})
	ctx := context.Background()
	lost := storetest.Node(t, s, "lost", small)
	tk, _ := runningOn(t, c, lost.ID, queue.TaskSpec{Image: "alpine", RestartPolicy: queue.RestartNever,
		Resources: queue.Resources{CPUMillis: 100}})
	spare := storetest.Node(t, s, "spare", small)
	// lost falls silent; spare keeps beating.
	if _, err := storetest.Conn(t, url).Exec(ctx, `UPDATE nodes SET last_heartbeat = now() - interval '1 hour' WHERE id = $1`, lost.ID); err != nil {
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
	c, store, url := newSweepTest(t, Options{MaxHeartbeatsPerSecond: 1})
	ctx := context.Background()
	var ids []uuid.UUID
	for _, name := range []string{"a", "b", "c"} {
		ids = append(ids, storetest.Node(t, store, name, small).ID)
	}
	if err := c.Sweep(ctx, false); err != nil {
		t.Fatal(err)
	}
	// Three nodes, one heartbeat a second in all: each beats every 3 s.
	r, err := store.Beat(ctx, ids[0], postgres.NodeHealth{}, time.Second)
	if err != nil || r.Interval != 3*time.Second {
		t.Fatalf("after a sweep, a node beating every 1s is told %v, %v; want 3s", r.Interval, err)
	}
	var live int
	if err := storetest.Conn(t, url).QueryRow(ctx, `SELECT live_nodes FROM heartbeat_policy`).Scan(&live); err != nil || live != 3 {
		t.Errorf("policy for %d live nodes, %v; want 3 live nodes", live, err)
	}
}
