package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// claimSQL is the agent's claim, in one statement: lock the node's scheduled
// tasks that no other claimer holds, move them to starting and record it.
//
// It commits without waiting for its WAL flush (asyncCommitCTE): the next
// write about the task, "running", waits for its own flush and so for the
// claim's, and should the server crash in between, the claim is lost as if
// it had not been made: the task is scheduled on the same node at the same
// attempt, the agent claims it again, and starting the attempt's container
// again finds the one it started (same name and labels) and keeps it. What
// the flush would cost is the wait, on the path from placement to start.
const claimSQL = `
WITH ` + asyncCommitCTE + `, c AS (
    SELECT id FROM tasks
    WHERE node_id = $1 AND state = 'scheduled' AND desired_state = 'running'
    ORDER BY scheduled_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), upd AS (
    UPDATE tasks t SET state = 'starting', not_before = NULL, updated_at = now()
    FROM c WHERE t.id = c.id
    RETURNING t.*
), ev AS (
    INSERT INTO task_events (task_id, from_state, to_state, attempt, node_id, reason)
    SELECT id, 'scheduled', 'starting', attempt, node_id, 'claimed by agent' FROM upd
)
SELECT ` + taskCols + ` FROM upd t, async_commit`

// leftSQL says whether the claim before it, in the same transaction, left
// any of the node's scheduled tasks: beyond its limit, or skipped because
// another transaction held them for a moment (a fenced write of the node's
// previous owner, say, which will be refused). Whether, not how many: a
// node may have hundreds placed on it in a backlog, and counting them at
// every claim read them all.
const leftSQL = `SELECT EXISTS (SELECT FROM tasks WHERE node_id = $1 AND state = 'scheduled' AND desired_state = 'running')`

// Claim is what one claim took, and what it left.
type Claim struct {
	Tasks []queue.Task
	// Left says it did not take all of the node's scheduled tasks. Left
	// with fewer tasks than the limit means some were held by another
	// transaction: the caller should look again soon rather than wait for
	// a notification that has already been sent.
	Left bool
}

// Claim moves up to limit tasks placed on node from scheduled to starting
// and returns them (the caller now owns starting their containers) with the
// count of those it left, in one round trip.
func (s *Store) Claim(ctx context.Context, node uuid.UUID, limit int) (Claim, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var c Claim
	b := &pgx.Batch{}
	b.Queue(claimSQL, node, limit).Query(func(rows pgx.Rows) error {
		var err error
		c.Tasks, err = collectTasks(rows, false)
		return err
	})
	b.Queue(leftSQL, node).QueryRow(func(row pgx.Row) error { return row.Scan(&c.Left) })
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return Claim{}, translate(err, "claiming tasks")
	}
	return c, nil
}
