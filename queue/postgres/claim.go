package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// claimSQL is the agent's claim, in one statement: lock the node's scheduled
// tasks that no other claimer holds, move them to starting and record it.
const claimSQL = `
WITH c AS (
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
SELECT ` + taskCols + ` FROM upd t`

// leftSQL counts the node's scheduled tasks that the claim before it, in
// the same transaction, did not take: beyond its limit, or skipped because
// another transaction held them for a moment (a fenced write of the node's
// previous owner, say, which will be refused).
const leftSQL = `SELECT count(*) FROM tasks WHERE node_id = $1 AND state = 'scheduled' AND desired_state = 'running'`

// Claim is what one claim took, and what it left.
type Claim struct {
	Tasks []queue.Task
	// Left is how many of the node's scheduled tasks it did not take. Left
	// with fewer tasks than the limit means some were held by another
	// transaction: the caller should look again soon rather than wait for
	// a notification that has already been sent.
	Left int
}

// Claim moves up to limit tasks placed on node from scheduled to starting
// and returns them (the caller now owns starting their containers) with the
// count of those it left, in one round trip.
func (s *Store) Claim(ctx context.Context, node uuid.UUID, limit int) (Claim, error) {
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

// NodeTasks returns the tasks an agent holds on node: starting or running.
func (s *Store) NodeTasks(ctx context.Context, node uuid.UUID) ([]queue.Task, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+taskCols+` FROM tasks t
WHERE t.node_id = $1 AND t.state IN ('starting', 'running') ORDER BY t.id`, node)
	if err != nil {
		return nil, translate(err, "reading node tasks")
	}
	tasks, err := collectTasks(rows, false)
	if err != nil {
		return nil, translate(err, "reading node tasks")
	}
	return tasks, nil
}

// StopRequests returns the tasks on node that an agent runs and a user asked to stop.
func (s *Store) StopRequests(ctx context.Context, node uuid.UUID) ([]queue.Task, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+taskCols+` FROM tasks t
WHERE t.node_id = $1 AND t.state IN ('starting', 'running') AND t.desired_state = 'stopped' ORDER BY t.id`, node)
	if err != nil {
		return nil, translate(err, "reading stop requests")
	}
	tasks, err := collectTasks(rows, false)
	if err != nil {
		return nil, translate(err, "reading stop requests")
	}
	return tasks, nil
}

// MarkRunning records that the lease's container is running.
func (s *Store) MarkRunning(ctx context.Context, l queue.Lease, containerID string) error {
	_, err := transition(ctx, s.pool, stateChange{TaskID: l.TaskID, To: queue.Running, Lease: &l,
		ContainerID: &containerID, Reason: "container started"})
	return err
}

// MarkExited records how the lease's container ended: completed on exit code
// 0, failed otherwise, or stopped when the user asked for it — unless the
// task's restart policy restarts it (see RecordExit, with the default backoff).
func (s *Store) MarkExited(ctx context.Context, l queue.Lease, code int, errText string, stopped bool) (queue.State, error) {
	return s.RecordExit(ctx, l, ExitReport{Code: code, Error: errText, Stopped: stopped, Backoff: queue.DefaultBackoff})
}
