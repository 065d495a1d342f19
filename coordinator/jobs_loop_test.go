package coordinator

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// TestJobLoop_ReconcilesAtOnceWhenATaskEnds runs a coordinator that polls
// for due jobs once an hour, and a batch job of one task: the job is
// reconciled (it ends complete) within seconds of its task's end, woken by
// the notification of the statement that made it due, well before the poll
// or the reconciler's own fallback timer (queue.ReconcileFallback). The job
// is submitted through the store, not the API, so that no API handler
// wakes the loop either.
func TestJobLoop_ReconcilesAtOnceWhenATaskEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newTestCoordinator(t, Options{Listen: "127.0.0.1:0", PassInterval: time.Hour})
	store := c.store
	n := storetest.Node(t, store, "n1", queue.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30})
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	rctx, stop := context.WithCancel(ctx)
	go func() { done <- c.Run(rctx, func(a net.Addr) { ready <- a }) }()
	defer func() { stop(); <-done }()
	<-ready

	spec, err := queue.ParseJobSpec([]byte("name: once\ntype: batch\ncount: 1\ntask: {image: busybox}"))
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := store.SubmitJob(ctx, postgres.JobSubmission{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	// The loop reconciles the new job (a task), and the scheduling pass
	// the reconciliation asks for places it.
	var task queue.Task
	await(ctx, t, "the job's task placed", func() bool {
		ts, err := store.JobTasks(ctx, j.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 1 && ts[0].State == queue.Scheduled {
			task = ts[0]
			return true
		}
		return false
	})
	l := storetest.Start(t, store, n.ID, task.ID)
	if _, err := store.RecordExit(ctx, l, postgres.ExitReport{Code: 0}); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	await(ctx, t, "the job complete", func() bool {
		got, err := store.GetJob(ctx, "once")
		if err != nil {
			t.Fatal(err)
		}
		return got.Status == queue.JobComplete
	})
	took := time.Since(ended)
	t.Logf("task end → job complete: %v (poll interval 1h, fallback %v)", took, queue.ReconcileFallback)
	if took > queue.ReconcileFallback/3 {
		t.Fatalf("the job was reconciled %v after its task ended: not woken by the task's end", took)
	}
}

// await calls done every 20 ms until it says yes, failing the test when
// ctx ends first.
func await(ctx context.Context, t *testing.T, what string, done func() bool) {
	t.Helper()
	for !done() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
