package coordinator

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/scheduler"
)

// Every replica runs the job loop. It reconciles the jobs that are due:
// changed by a user, with tasks that started, ended or changed health, or
// nodes that came and went (the triggers of 00020_jobs.sql count such
// changes), or whose last reconciliation asked to be looked at again by now
// (a health timer, a deadline, a periodic tick, the fallback). The
// statement that makes a job due notifies postgres.ChannelJobs
// (00025_job_wake.sql), which every replica LISTENs on, so the loop looks
// at once, and a rolling update's next step waits for no poll; it also
// looks every PassInterval, or when the next timer is due, should a
// notification be lost. Each wake-up makes every replica look; each
// reconciliation is one transaction that holds its job's row and skips a
// job another replica holds, so the replicas share the jobs without a
// leader and never reconcile one twice at once.

// jobBatch is how many due jobs the loop takes at a time.
const jobBatch = 100

// jobWorkers is how many of them a replica reconciles at once. Each
// reconciliation is a transaction of a few round trips that holds one
// job's row, so they do not wait for each other; more than a few would
// take the connections the API and the scheduling passes need (pgx's pool
// holds max(4, CPUs) by default).
const jobWorkers = 2

// jobLoop reconciles due jobs until ctx ends.
func (c *Coordinator) jobLoop(ctx context.Context) {
	for {
		wait := c.reconcileDue(ctx)
		wait = min(wait, c.opts.PassInterval) + time.Duration(rand.Int64N(int64(c.opts.PassInterval)/10+1))
		select {
		case <-ctx.Done():
			return
		case <-c.jobWake:
		case <-time.After(wait):
		}
	}
}

// pokeJobs asks the job loop to look for due jobs without blocking.
func (c *Coordinator) pokeJobs() {
	select {
	case c.jobWake <- struct{}{}:
	default:
	}
}

// reconcileDue reconciles due jobs until none is left that this replica
// could take, and returns how long until the next is due.
func (c *Coordinator) reconcileDue(ctx context.Context) time.Duration {
	for ctx.Err() == nil {
		ids, wait, err := c.store.DueJobs(ctx, jobBatch)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("finding due jobs failed", "err", err)
			}
			return c.opts.PassInterval
		}
		if len(ids) == 0 {
			return wait
		}
		var done atomic.Int64
		var wg sync.WaitGroup
		next := make(chan uuid.UUID)
		for range min(jobWorkers, len(ids)) {
			wg.Go(func() {
				for id := range next {
					if c.ReconcileJob(ctx, id) {
						done.Add(1)
					}
				}
			})
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
		if done.Load() == 0 {
			return c.opts.PassInterval / 4 // other replicas hold them: look again soon
		}
	}
	return 0
}

// ReconcileJob reconciles one job if it is due and no other replica holds
// it, and reports whether it did.
func (c *Coordinator) ReconcileJob(ctx context.Context, id uuid.UUID) bool {
	res, err := c.store.ReconcileJob(ctx, id, scheduler.Reconcile, c.sealJobTask)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("reconciling a job failed", "job", id, "err", err)
		}
		return false
	}
	if res.Created > 0 {
		c.poke() // this replica places them at once
	}
	if res.Plan.Revert > 0 {
		c.log.Warn("job reverted", "job", id, "to", res.Plan.Revert, "why", res.Plan.RevertReason)
	}
	return res.Done
}

// sealJobTask seals a job version's secrets for one of its new tasks (a
// replica without the key refuses: secrets.ErrNoKey).
func (c *Coordinator) sealJobTask(task, secretsID uuid.UUID, sealed []byte) ([]byte, error) {
	values, err := c.opts.SecretsKey.Open(secretsID, sealed)
	if err != nil {
		return nil, err
	}
	return c.opts.SecretsKey.Seal(task, values)
}
