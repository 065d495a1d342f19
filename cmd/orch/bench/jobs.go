package bench

import (
	"context"
	"fmt"
	"math"
	"net"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// jobsMaxParallel is how many tasks of a service the jobs phase's rolling
// update replaces at a time; its new tasks count as healthy once they run
// (min_healthy_time 0), so the update measures orch, not a wait.
const jobsMaxParallel = 2

// JobsResult is services run as jobs by simulated agents, against the same
// number of plain tasks through the API in the same run.
type JobsResult struct {
	Agents   int `json:"agents"`
	Services int `json:"services"`
	Tasks    int `json:"tasks"`
	// PlainPlacementsPerSec is tasks ÷ the time from the first API create
	// to the last placement, for plain tasks; JobPlacementsPerSec the same
	// from the first job run, for the services' tasks; Ratio is the latter
	// ÷ the former.
	PlainPlacementsPerSec float64 `json:"plain_placements_per_s"`
	JobPlacementsPerSec   float64 `json:"job_placements_per_s"`
	Ratio                 float64 `json:"ratio_jobs_to_plain"`
	// RunSec is the time from the first job run to every task of every
	// service running.
	RunSec float64 `json:"job_run_to_all_running_s"`
	// UpdateSec is the time from the first job run of a new version to the
	// last service's deployment succeeding, max_parallel UpdateParallel.
	UpdateSec      float64 `json:"rolling_update_s"`
	UpdateParallel int     `json:"rolling_update_max_parallel"`
}

// jobs runs JobServices × JobTasks plain tasks through a coordinator's API
// to measure placements, stops them, then runs JobServices services of JobTasks tasks
// each through the job API, timing until all run, and rolls all of them to
// a new version.
func (b *bench) jobs(ctx context.Context) error {
	n, services, per := b.opts.Agents, b.opts.JobServices, b.opts.JobTasks
	total := services * per
	f, err := b.newFleet(ctx, "jobs", n)
	if err != nil {
		return err
	}
	defer f.stop()
	f.start(ctx)
	cstore, err := postgres.Open(ctx, b.url)
	if err != nil {
		return err
	}
	defer cstore.Close()
	c, err := coordinator.New(cstore, coordinator.Options{Listen: "127.0.0.1:0", Strategy: b.opts.Strategy,
		MaxHeartbeatsPerSecond: coordinator.DefaultMaxHeartbeatsPerSecond, Name: "bench jobs", Logger: quietLogger(b.logw)})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan net.Addr, 1)
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(cctx, func(a net.Addr) { ready <- a }) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-runErr:
		return fmt.Errorf("coordinator: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	client, err := coordinator.NewClient("http://"+addr.String(), "")
	if err != nil {
		return err
	}
	sleepCtx(ctx, time.Second+time.Duration(n)*5*time.Millisecond) // the agents' first look for work
	live0, err := b.store.LiveTasks(ctx, math.MaxInt32)
	if err != nil {
		return err
	}
	r := &JobsResult{Agents: n, Services: services, Tasks: total, UpdateParallel: jobsMaxParallel}
	timeout := phaseTimeout(total)

	// The yardstick: as many plain tasks, created through the API by 16
	// clients, placed and run; then stopped, so the jobs start from the
	// same empty fleet.
	t0, err := b.store.Now(ctx)
	if err != nil {
		return err
	}
	ids, _, err := createAPI(ctx, client, total, 16, simRequest("100m", "-sleep", "forever"))
	if err != nil {
		return err
	}
	p, err := b.waitProgress(ctx, "plain tasks running", timeout, func() (postgres.Progress, error) { return b.store.TasksProgress(ctx, ids) },
		func(p postgres.Progress) bool { return p.Running == total })
	if err != nil {
		return err
	}
	r.PlainPlacementsPerSec = perSecond(total, p.LastPlaced.Sub(t0))
	if err := forEach(ctx, total, 16, func(ctx context.Context, i int) error {
		_, err := b.store.RequestStop(ctx, ids[i], "bench: the yardstick is measured")
		return err
	}); err != nil {
		return fmt.Errorf("stopping the plain tasks: %w", err)
	}
	if err := b.waitLive(ctx, live0, timeout); err != nil {
		return err
	}

	// The services, each one job run, by 16 clients.
	names := make([]string, services)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-svc-%d", b.id, i+1)
	}
	t0, err = b.store.Now(ctx)
	if err != nil {
		return err
	}
	jobIDs, err := runJobs(ctx, client, names, per, 1)
	if err != nil {
		return err
	}
	p, err = b.waitProgress(ctx, "every service running", timeout, func() (postgres.Progress, error) { return b.store.JobsProgress(ctx, jobIDs, 1) },
		func(p postgres.Progress) bool { return p.Running == total })
	if err != nil {
		return err
	}
	r.JobPlacementsPerSec = perSecond(total, p.LastPlaced.Sub(t0))
	r.RunSec = p.LastStarted.Sub(t0).Seconds()
	if r.PlainPlacementsPerSec > 0 {
		r.Ratio = r.JobPlacementsPerSec / r.PlainPlacementsPerSec
	}

	// A rolling update of every service to version 2.
	t0, err = b.store.Now(ctx)
	if err != nil {
		return err
	}
	if _, err := runJobs(ctx, client, names, per, 2); err != nil {
		return err
	}
	p, err = b.waitProgress(ctx, "every service updated", 2*timeout, func() (postgres.Progress, error) { return b.store.JobsProgress(ctx, jobIDs, 2) },
		func(p postgres.Progress) bool { return p.Deployed == services && p.Running == total && p.Outdated == 0 })
	if err != nil {
		return err
	}
	r.UpdateSec = p.LastDeployed.Sub(t0).Seconds()
	b.report.Jobs = r

	// Purge the services, so later phases see none of their rows.
	if err := forEach(ctx, services, 16, func(ctx context.Context, i int) error {
		if _, err := client.StopJob(ctx, names[i], true); err != nil {
			return fmt.Errorf("purging %s: %w", names[i], err)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := b.waitLive(ctx, live0, timeout); err != nil {
		return err
	}
	if _, err := b.waitProgress(ctx, "the services purged", timeout, func() (postgres.Progress, error) { return b.store.JobsProgress(ctx, jobIDs, 2) },
		func(p postgres.Progress) bool { return p.Tasks == 0 }); err != nil {
		return err
	}
	cancel()
	if err := <-runErr; err != nil && ctx.Err() == nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	return f.retire(ctx)
}

// runJobs runs a service of per simulated tasks under each name at version
// (which goes into its environment: a new one replaces every task), from
// 16 clients, and returns the jobs' ids in the order of names.
func runJobs(ctx context.Context, client *coordinator.Client, names []string, per, version int) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, len(names))
	err := forEach(ctx, len(names), 16, func(ctx context.Context, i int) error {
		spec, err := queue.ParseJobSpec(fmt.Appendf(nil, `{"name": %q, "type": "service", "count": %d,
"task": {"image": %q, "command": ["-sleep", "forever"], "env": {"VERSION": "%d"}, "resources": {"cpu": "100m", "memory": "64MiB"}},
"update": {"max_parallel": %d, "min_healthy_time": "0s"}}`, names[i], per, simImage, version, jobsMaxParallel))
		if err != nil {
			return err
		}
		res, err := client.RunJob(ctx, spec)
		if err != nil {
			return fmt.Errorf("job run %s: %w", names[i], err)
		}
		out[i] = res.Job.ID
		return nil
	})
	return out, err
}

// forEach calls fn for each of 0..n-1 from workers goroutines and returns
// the first error.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for w := 0; w < min(workers, n); w++ {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				if err := fn(gctx, i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// waitProgress polls progress until done accepts it, for at most timeout.
func (b *bench) waitProgress(ctx context.Context, what string, timeout time.Duration, progress func() (postgres.Progress, error),
	done func(postgres.Progress) bool) (postgres.Progress, error) {
	deadline := time.Now().Add(timeout)
	for {
		p, err := progress()
		if err != nil {
			return p, err
		}
		if done(p) {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("waiting for %s: gave up after %s at %+v", what, timeout, p)
		}
		// The figures come from the rows' timestamps: a slow poll
		// changes them little, and costs the phase less.
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return p, ctx.Err()
		}
	}
}

// waitLive waits until no more than before tasks are live, for at most
// timeout.
func (b *bench) waitLive(ctx context.Context, before int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		live, err := b.store.LiveTasks(ctx, before+1)
		if err != nil {
			return err
		}
		if live <= before {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tasks still live after %s", timeout)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}
