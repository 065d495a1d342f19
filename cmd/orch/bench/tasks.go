package bench

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// simImage names the image of simulated tasks; the in-memory runtime never
// pulls it.
const simImage = "orch-bench-sim"

// simSpec is a simulated task: the workload's arguments (see
// agent.WorkloadBehavior) and requests small enough for a whole phase to
// fit on its nodes at once.
func simSpec(args ...string) queue.TaskSpec {
	return queue.TaskSpec{Image: simImage, Command: args, RestartPolicy: queue.RestartNever,
		Resources: queue.Resources{CPUMillis: 100, MemoryBytes: 64 << 20}}
}

// simRequest is simSpec as an API request.
func simRequest(cpu string, args ...string) coordinator.TaskRequest {
	q := coordinator.Quantity(cpu)
	return coordinator.TaskRequest{Image: simImage, Command: args, CPU: &q}
}

// createDirect stores n tasks through the store, from workers goroutines.
func (b *bench) createDirect(ctx context.Context, n, workers int, spec queue.TaskSpec) ([]uuid.UUID, time.Duration, error) {
	ids, took, err := createN(ctx, n, workers, func(ctx context.Context) (uuid.UUID, error) {
		t, err := b.store.CreateTask(ctx, uuid.Nil, spec)
		return t.ID, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("creating tasks: %w", err)
	}
	return ids, took, nil
}

// createAPI submits n tasks through a coordinator's API, from workers
// goroutines, as fast as it answers.
func createAPI(ctx context.Context, c *coordinator.Client, n, workers int, req coordinator.TaskRequest) ([]uuid.UUID, time.Duration, error) {
	ids, took, err := createN(ctx, n, workers, func(ctx context.Context) (uuid.UUID, error) {
		t, err := c.CreateTask(ctx, req)
		return t.ID, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("creating tasks through the API: %w", err)
	}
	return ids, took, nil
}

// createAPIBatches submits n tasks through a coordinator's API, batch to a
// request (POST /tasks with an array: one transaction each), from workers
// goroutines, as fast as it answers.
func createAPIBatches(ctx context.Context, c *coordinator.Client, n, batch, workers int, req coordinator.TaskRequest) ([]uuid.UUID, time.Duration, error) {
	ids := make([]uuid.UUID, n)
	var next atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		g.Go(func() error {
			reqs := make([]coordinator.TaskRequest, batch)
			for {
				from := int(next.Add(int64(batch))) - batch
				if from >= n {
					return nil
				}
				to := min(from+batch, n)
				for i := range reqs[:to-from] {
					reqs[i] = req
				}
				ts, err := c.CreateTasks(gctx, reqs[:to-from])
				if err != nil {
					return fmt.Errorf("creating tasks through the API in batches: %w", err)
				}
				for i, t := range ts {
					ids[from+i] = t.ID
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	return ids, time.Since(start), nil
}

// createN calls create n times from workers goroutines and returns the ids
// in order and how long it took.
func createN(ctx context.Context, n, workers int, create func(context.Context) (uuid.UUID, error)) ([]uuid.UUID, time.Duration, error) {
	ids := make([]uuid.UUID, n)
	var next atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for w := 0; w < workers; w++ {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				id, err := create(gctx)
				if err != nil {
					return err
				}
				ids[i] = id
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	return ids, time.Since(start), nil
}

// waitFinished waits until every one of ids has ended, for at most
// timeout. It polls the cheap count of live tasks and checks the ids
// themselves only once that count is down to what was live before (before),
// so that the polling adds little to the load it waits on.
func (b *bench) waitFinished(ctx context.Context, ids []uuid.UUID, before int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		live, err := b.store.LiveTasks(ctx, before+1)
		if err != nil {
			return err
		}
		if live <= before {
			_, _, finished, err := b.store.TaskSpan(ctx, ids)
			if err != nil {
				return err
			}
			if finished == len(ids) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			_, _, finished, _ := b.store.TaskSpan(ctx, ids)
			return fmt.Errorf("%d of %d tasks still not finished after %s", len(ids)-finished, len(ids), timeout)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// newFleetCounted is newFleet, with the live tasks there are before the
// phase adds any: what its waits count down to.
func (b *bench) newFleetCounted(ctx context.Context, name string, n int) (*fleet, int, error) {
	f, err := b.newFleet(ctx, name, n)
	if err != nil {
		return nil, 0, err
	}
	live0, err := b.store.LiveTasks(ctx, math.MaxInt32)
	if err != nil {
		f.stop()
		return nil, 0, err
	}
	return f, live0, nil
}

// stopAll ends a phase: it stops its coordinator and its agents, reads the
// write counters once they have settled, and cordons the agents' nodes so
// that later phases place nothing there.
func (b *bench) stopAll(ctx context.Context, rc *runningCoordinator, f *fleet) (postgres.Activity, error) {
	if err := rc.stop(); err != nil {
		return postgres.Activity{}, err
	}
	f.stop()
	a1, err := b.settledActivity(ctx)
	if err != nil {
		return a1, err
	}
	return a1, f.cordon(ctx)
}

// settledActivity reads the write counters once the table counters have
// stopped moving: backends flush them lazily (see postgres.Activity).
func (b *bench) settledActivity(ctx context.Context) (postgres.Activity, error) {
	prev, err := b.store.Activity(ctx)
	if err != nil {
		return prev, err
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if !sleepCtx(ctx, 300*time.Millisecond) {
			return prev, ctx.Err()
		}
		cur, err := b.store.Activity(ctx)
		if err != nil {
			return cur, err
		}
		if cur.RowsWritten == prev.RowsWritten && cur.Updates == prev.Updates {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// percentile returns the p-th percentile (0..100) of ds by the
// nearest-rank method; ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := int(p/100*float64(len(ds))+0.999999) - 1
	return ds[min(max(rank, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
