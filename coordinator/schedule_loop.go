package coordinator

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/orchd/orch/queue/postgres"
)

// scheduleLoop runs passes when woken by a notification and otherwise every
// PassInterval (with jitter, so replicas do not beat in step). A pass that
// filled its batch is followed at once by another, so a deep queue drains at
// full speed.
func (c *Coordinator) scheduleLoop(ctx context.Context) {
	for {
		c.drain(ctx)
		jitter := time.Duration(rand.Int64N(int64(c.opts.PassInterval)/5 + 1))
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-time.After(c.opts.PassInterval + jitter):
		}
	}
}

// drain runs passes until one finds less than a full batch, or a full batch
// of which nothing could be placed (waiting tasks move to the back of the
// queue, so the next timed pass looks at others; looping at once would only
// re-read a cluster that has no room).
func (c *Coordinator) drain(ctx context.Context) {
	for races := 0; ctx.Err() == nil; {
		res, err := c.Pass(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("scheduling pass failed", "err", err)
			}
			return
		}
		if res.Rejected > 0 && races < 10 {
			races++ // lost a race with another replica: retry on a fresh snapshot
			continue
		}
		races = 0
		if res.Considered < c.opts.Batch || res.Placed == 0 {
			return
		}
	}
}

// Pass runs one scheduling pass.
func (c *Coordinator) Pass(ctx context.Context) (postgres.PassResult, error) {
	start := time.Now()
	res, err := c.store.SchedulePass(ctx, postgres.PassOpts{
		Batch:       c.opts.Batch,
		NodeTimeout: c.opts.NodeDownTimeout,
		By:          c.opts.Name,
		Strategy:    c.sched.Strategy(),
	}, c.sched.Plan)
	c.metrics.observePass(time.Since(start), res, err)
	return res, err
}
