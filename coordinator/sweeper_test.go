package coordinator

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

// newSweepTest returns a coordinator on a database of its own, its store and
// the database's URL.
func newSweepTest(t *testing.T, timeout time.Duration) (*Coordinator, *postgres.Store, string) {
	t.Helper()
	url := pgtest.New(t)
	store, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	c, err := New(store, Options{NodeDownTimeout: timeout, Name: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c, store, url
}

// rawConn connects to the database at url directly, for what the store has
// no method for: a node falling silent, a look at a table.
func rawConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
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
	claim, err := s.Claim(ctx, node, 10)
	if err != nil || len(claim.Tasks) != 1 {
		t.Fatalf("claim: %v, %v", claim.Tasks, err)
	}
	if err := s.MarkRunning(ctx, claim.Tasks[0].Lease(), "c1"); err != nil {
		t.Fatal(err)
	}
	return claim.Tasks[0]
}

func TestSweep_SilentNodeIsDown_ItsTaskRunsElsewhere_ANeverTaskToo(t *testing.T) {
	t.Parallel()
	c, s, url := newSweepTest(t, time.Second)
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
	if _, err := rawConn(t, url).Exec(ctx, `UPDATE nodes SET last_heartbeat = now() - interval '1 hour' WHERE id = $1`, lost.ID); err != nil {
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
	url := pgtest.New(t)
	store, err := postgres.Open(context.Background(), url)
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
	var live int
	if err := rawConn(t, url).QueryRow(ctx, `SELECT live_nodes FROM heartbeat_policy`).Scan(&live); err != nil || live != 3 {
		t.Errorf("policy for %d live nodes, %v; want 3 live nodes", live, err)
	}
}
