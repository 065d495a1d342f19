package coordinator

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// This file holds the fixtures the package's tests share; those of the
// store (a database, nodes, tasks) are in queue/postgres/storetest.

// newTestCoordinator builds a coordinator with opts over a store on a
// database of its own (c.store).
func newTestCoordinator(t *testing.T, opts Options) *Coordinator {
	t.Helper()
	return coordinatorOn(t, storetest.New(t), opts)
}

// coordinatorOn builds a coordinator with opts over store. Its log goes
// nowhere unless opts.Logger says where.
func coordinatorOn(t *testing.T, store *postgres.Store, opts Options) *Coordinator {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runningOn creates a task from spec, lets c's scheduling pass place it
// (on node: the test sees to it that it fits nowhere else) and starts it
// there as node's agent would.
func runningOn(t *testing.T, c *Coordinator, node uuid.UUID, spec queue.TaskSpec) (queue.Task, queue.Lease) {
	t.Helper()
	tk := storetest.Task(t, c.store, spec)
	if res, err := c.Pass(context.Background()); err != nil || res.Placed != 1 {
		t.Fatalf("pass: %+v, %v", res, err)
	}
	return tk, storetest.Start(t, c.store, node, tk.ID)
}

// apiRig is a coordinator's API served over HTTP, with its store.
type apiRig struct {
	t     *testing.T
	store *postgres.Store
	c     *Coordinator
	srv   *httptest.Server
}

func newAPIRig(t *testing.T) *apiRig {
	t.Helper()
	return newAPIRigWith(t, Options{})
}

// newAPIRigWith is newAPIRig with a coordinator of opts.
func newAPIRigWith(t *testing.T, opts Options) *apiRig {
	t.Helper()
	c := newTestCoordinator(t, opts)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return &apiRig{t: t, store: c.store, c: c, srv: srv}
}

func (r *apiRig) get(path string) (int, string, http.Header) {
	r.t.Helper()
	resp, err := http.Get(r.srv.URL + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// running creates a task called name and runs it on node.
func (r *apiRig) running(node queue.Node, name string) (queue.Task, queue.Lease) {
	r.t.Helper()
	return runningOn(r.t, r.c, node.ID, queue.TaskSpec{Name: name, Image: "workload:test",
		Resources: queue.Resources{CPUMillis: 500, MemoryBytes: 256 << 20}})
}

// node registers a node of 2 cores, 4 GiB of memory and 20 GiB of disk.
func (r *apiRig) node(name string) queue.Node {
	r.t.Helper()
	return storetest.Node(r.t, r.store, name, queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 20 << 30})
}

// startFailed creates a task called name whose container could not be
// started on node (its image does not exist, say: err), as node's agent
// records it.
func (r *apiRig) startFailed(node queue.Node, name, err string) queue.Task {
	r.t.Helper()
	ctx := context.Background()
	tk := storetest.Task(r.t, r.store, queue.TaskSpec{Name: name, Image: "127.0.0.1:1/nosuch:1", RestartPolicy: queue.RestartNever})
	if res, perr := r.c.Pass(ctx); perr != nil || res.Placed != 1 {
		r.t.Fatalf("pass: %+v, %v", res, perr)
	}
	claim, cerr := r.store.Claim(ctx, node.ID, 10)
	if cerr != nil || len(claim.Tasks) != 1 || claim.Tasks[0].ID != tk.ID {
		r.t.Fatalf("claim: %+v, %v", claim.Tasks, cerr)
	}
	if _, xerr := r.store.RecordExit(ctx, claim.Tasks[0].Lease(), postgres.ExitReport{StartFailed: true, Error: err}); xerr != nil {
		r.t.Fatal(xerr)
	}
	return tk
}

// runCoordinator runs c (Run) until the stop it returns is called, or the
// test ends, and returns the API's address once it listens. stop returns
// what Run returned.
func runCoordinator(t *testing.T, c *Coordinator) (api net.Addr, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, func(a net.Addr) { addrc <- a }) }()
	select {
	case api = <-addrc:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return api, stop
}
