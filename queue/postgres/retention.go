package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// Retention: finished tasks, with everything recorded about them, are
// deleted once they are older than the retention; stats history is pruned
// for every node by the database's clock; and the counts of finished tasks
// are kept up to date for /metrics (see 00013_retention.sql).

// DefaultRetention is how long finished tasks are kept.
const DefaultRetention = 7 * 24 * time.Hour

// countLag is how far counted_until stays behind the clock: longer than any
// transaction may last, so a task cannot commit a finished_at below it once
// it has been counted.
const countLag = 30 * time.Second

// expireSQL deletes a batch of tasks that finished before the cutoff, with
// their events (their logs, usage, stats, totals and secrets go with them,
// ON DELETE CASCADE), and subtracts them from task_counts. SKIP LOCKED lets
// several coordinators share the work; live tasks are never touched. The
// counts' row is locked after the tasks, and a recount holds it while it
// counts, so the two never miss or double a task.
const expireSQL = `
WITH doomed AS (
    SELECT id, state, finished_at FROM tasks
    WHERE state IN ('completed', 'failed', 'stopped') AND finished_at < $1::timestamptz
      AND ($3::uuid IS NULL OR id = $3::uuid)
      AND ($4::uuid[] IS NULL OR job_id = ANY($4::uuid[])) -- a job's deletion (jobs_reconcile.go)
    LIMIT $2 FOR UPDATE SKIP LOCKED
), ev AS (
    DELETE FROM task_events e USING doomed d WHERE e.task_id = d.id
), del AS (
    DELETE FROM tasks t USING doomed d WHERE t.id = d.id RETURNING d.state, d.finished_at
), counted AS (
    SELECT d.state, count(*) AS n FROM del d, (SELECT counted_until FROM task_counts FOR UPDATE) c
    WHERE d.finished_at <= c.counted_until GROUP BY d.state
), dec AS (
    UPDATE task_counts SET
        completed = completed - COALESCE((SELECT n FROM counted WHERE state = 'completed'), 0),
        failed    = failed    - COALESCE((SELECT n FROM counted WHERE state = 'failed'), 0),
        stopped   = stopped   - COALESCE((SELECT n FROM counted WHERE state = 'stopped'), 0)
    WHERE EXISTS (SELECT 1 FROM counted)
)
SELECT count(*) FROM del`

// ExpireTasks deletes up to batch tasks that finished more than olderThan
// ago, with everything recorded about them, in one transaction, and returns
// how many it deleted. Call it again while it returns batch.
func (s *Store) ExpireTasks(ctx context.Context, olderThan time.Duration, batch int) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int
	err := s.pool.QueryRow(ctx, expireSQL, time.Now().Add(-olderThan), batch, nil, nil).Scan(&n)
	if err != nil {
		return 0, translate(err, "deleting finished tasks")
	}
	return n, nil
}

// PurgeTask deletes a finished task and everything recorded about it at
// once. A task that has not finished is a conflict: stop it first.
func (s *Store) PurgeTask(ctx context.Context, id uuid.UUID) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int
	err := s.pool.QueryRow(ctx, expireSQL, "infinity", 1, id, nil).Scan(&n)
	if err != nil {
		return translate(err, fmt.Sprintf("purging task %s", id))
	}
	if n == 1 {
		return nil
	}
	var state queue.State
	if err := s.pool.QueryRow(ctx, `SELECT state FROM tasks WHERE id = $1`, id).Scan(&state); err != nil {
		return translate(err, fmt.Sprintf("task %s", id))
	}
	return fmt.Errorf("task %s is %s: %w: only a finished task can be purged (stop it first)", id, state, queue.ErrConflict)
}

// PruneStats deletes up to batch rows of node and of task stats history
// older than olderThan, by the database's clock, for every node (also
// those that no longer report, whose agents prune nothing), and returns how
// many it deleted.
func (s *Store) PruneStats(ctx context.Context, olderThan time.Duration, batch int) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int
	err := s.pool.QueryRow(ctx, `
WITH n AS (
    DELETE FROM node_stats WHERE id IN (
        SELECT id FROM node_stats WHERE at < now() - make_interval(secs => $1::float8) LIMIT $2)
    RETURNING 1
), t AS (
    DELETE FROM task_stats WHERE id IN (
        SELECT id FROM task_stats WHERE at < now() - make_interval(secs => $1::float8) LIMIT $2)
    RETURNING 1
)
SELECT (SELECT count(*) FROM n) + (SELECT count(*) FROM t)`, olderThan.Seconds(), batch).Scan(&n)
	if err != nil {
		return 0, translate(err, "pruning stats")
	}
	return n, nil
}

// refreshCountsSQL moves task_counts forward to countLag ago, adding the
// tasks that finished in between (a range of tasks_finished_idx), unless
// another coordinator did within the interval ($1) or is doing it now.
const refreshCountsSQL = `
WITH c AS (
    SELECT counted_until, now() - make_interval(secs => $2::float8) AS upto FROM task_counts
    WHERE counted_at < now() - make_interval(secs => $1::float8) FOR UPDATE SKIP LOCKED
), x AS (
    SELECT c.upto, n.* FROM c, LATERAL (
        SELECT count(*) FILTER (WHERE t.state = 'completed') AS completed,
               count(*) FILTER (WHERE t.state = 'failed') AS failed,
               count(*) FILTER (WHERE t.state = 'stopped') AS stopped
        FROM tasks t
        WHERE t.state IN ('completed', 'failed', 'stopped')
          AND t.finished_at > c.counted_until AND t.finished_at <= c.upto) n
)
UPDATE task_counts k SET
    completed = k.completed + x.completed, failed = k.failed + x.failed, stopped = k.stopped + x.stopped,
    counted_until = x.upto, counted_at = now()
FROM x
RETURNING true`

// RefreshTaskCounts moves task_counts forward, unless another coordinator
// did so within every; it reports whether it did.
func (s *Store) RefreshTaskCounts(ctx context.Context, every time.Duration) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var done bool
	err := s.pool.QueryRow(ctx, refreshCountsSQL, every.Seconds(), countLag.Seconds()).Scan(&done)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // fresh already, or being refreshed
	}
	if err != nil {
		return false, translate(err, "counting finished tasks")
	}
	return true, nil
}
