package coordinator

import (
	"context"
	"time"
)

// Retention keeps the database from growing without end. Every replica runs
// the loop; each of its steps is one short transaction that skips what
// another replica holds, so they share the work:
//
//   - finished tasks older than Retention are deleted with everything
//     recorded about them (events, logs, usage, stats, secrets), a batch at a
//     time, never touching a live task or holding up placements;
//   - node and task stats older than StatsRetention are pruned for every
//     node, by the database's clock (agents prune their own as they write,
//     but a node that stopped reporting prunes nothing);
//   - the counts of finished tasks that /metrics serves are brought up to
//     date, so that a scrape never counts the whole table.

const (
	// retentionEvery is how often the loop deletes what has expired.
	retentionEvery = time.Minute
	// countsEvery is how often the finished-task counts are brought forward.
	countsEvery = 5 * time.Second
	// retentionBatch bounds one transaction's deletions.
	retentionBatch = 500
)

// retentionLoop runs the retention until ctx ends.
func (c *Coordinator) retentionLoop(ctx context.Context) {
	t := time.NewTicker(countsEvery)
	defer t.Stop()
	var lastExpiry time.Time
	for {
		if _, err := c.store.RefreshTaskCounts(ctx, countsEvery); err != nil && ctx.Err() == nil {
			c.log.Warn("counting finished tasks failed", "err", err)
		}
		if time.Since(lastExpiry) >= retentionEvery {
			lastExpiry = time.Now()
			c.expire(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// expire deletes what has outlived its retention, batch after batch until
// none is left.
func (c *Coordinator) expire(ctx context.Context) {
	if c.opts.Retention > 0 {
		total := 0
		for ctx.Err() == nil {
			n, err := c.store.ExpireTasks(ctx, c.opts.Retention, retentionBatch)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("deleting finished tasks failed", "err", err)
				}
				break
			}
			total += n
			if n < retentionBatch {
				break
			}
		}
		if total > 0 {
			c.log.Info("deleted finished tasks past their retention", "tasks", total, "retention", c.opts.Retention)
		}
	}
	if c.opts.StatsRetention > 0 {
		for ctx.Err() == nil {
			n, err := c.store.PruneStats(ctx, c.opts.StatsRetention, retentionBatch*10)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("pruning stats failed", "err", err)
				}
				break
			}
			if n < retentionBatch*10 {
				break
			}
		}
	}
}
