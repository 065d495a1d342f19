// Package storetest gives the tests of code built on the store what they
// keep needing: a Store on a fresh database, a node, a task, a task taken to
// running on a node as its agent would, a direct connection for what the
// store has no method for, and a free TCP address for a server the test
// starts. Every helper fails the test on an error, so a test reads as its
// steps.
//
//	s := storetest.New(t)
//	n := storetest.Node(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 20 << 30})
//	tk := storetest.Task(t, s, queue.TaskSpec{Resources: queue.Resources{CPUMillis: 100}})
//	s.SchedulePass(ctx, postgres.PassOpts{By: "test"}, storetest.OnNode(n.ID)) // or a coordinator's pass
//	lease := storetest.Start(t, s, n.ID, tk.ID)                                // claimed and running on n
//
// Placing is the caller's: a coordinator's tests place with the
// coordinator's own pass (its metrics count it), an agent's with the
// scheduler or OnNode, as the test needs.
//
// The tests of package postgres itself cannot import storetest: it imports
// that package, and Go refuses the cycle. Their fixtures, under the same
// ideas, are in queue/postgres/fixtures_test.go.
package storetest

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

// New opens a Store on a fresh, migrated database of its own (pgtest.New);
// both go when the test ends. The package's TestMain must call pgtest.Main
// (or pgtest.Cleanup).
func New(t testing.TB) *postgres.Store {
	t.Helper()
	return Open(t, pgtest.New(t))
}

// Open opens one more Store (a pool of its own) on the database at url, as
// another process would, and closes it when the test ends.
func Open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Conn connects to the database at url directly, for what the store has no
// method for (a node falling silent, a row held by another transaction, a
// look at a table), and closes the connection when the test ends.
func Conn(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Node registers a node called name that offers capacity.
func Node(t testing.TB, s *postgres.Store, name string, capacity queue.Resources) queue.Node {
	t.Helper()
	n, err := s.RegisterNode(context.Background(), queue.NodeRegistration{Name: name, Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Task creates a pending task from spec, normalized and validated as the
// API does; an empty image is "alpine".
func Task(t testing.TB, s *postgres.Store, spec queue.TaskSpec) queue.Task {
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

// OnNode is a plan that puts every task of the pass on node.
func OnNode(node uuid.UUID) postgres.PlanFunc {
	return func(tasks []queue.Task, _ queue.Snapshot) queue.Plan {
		p := queue.Plan{Unplaced: map[uuid.UUID]string{}}
		for _, tk := range tasks {
			p.Placements = append(p.Placements, queue.Placement{TaskID: tk.ID, NodeID: node})
		}
		return p
	}
}

// Start does what node's agent does with task once a pass has placed it
// there: it claims it and marks it running (in a container "c-" and the
// first 8 characters of the task's id). It returns the lease.
func Start(t testing.TB, s *postgres.Store, node, task uuid.UUID) queue.Lease {
	t.Helper()
	ctx := context.Background()
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

// FreeAddr returns a loopback address ("127.0.0.1:port") that nothing
// listens on right now, for a server the test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreePort is the port of FreeAddr.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
