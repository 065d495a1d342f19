package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// CreateOpts tune CreateTask.
type CreateOpts struct {
	// Quiet stores the task without notifying the schedulers, for a caller
	// that wakes one itself: the coordinator's API pokes its own scheduling
	// loop, which places the task at once. A NOTIFY is not free with many
	// agents: PostgreSQL (up to 17 at least) signals every connection that
	// LISTENs in the database on every notifying commit, whatever the
	// channel, and each of them wakes up, reads the notification queue in a
	// transaction of its own and goes back to sleep. With a thousand agents
	// listening that is a thousand backends woken per task created, for a
	// notification none of them wants. Other coordinator replicas still find
	// the task at their next periodic pass.
	Quiet bool
	// SealedSecrets are the spec's secrets sealed with the cluster's key for
	// the task's id (package queue/secrets). The store keeps them as they
	// come, and the secrets' names; it never sees a value.
	SealedSecrets []byte
}

// CreateTask stores a new pending task, then wakes the schedulers (see
// wakeAsync for why not in the same transaction) unless opts say Quiet. The
// spec must have been validated; the id may be preset (the seed's API lets
// clients choose it) or uuid.Nil for a fresh one. opts may be left out, which
// is what most callers do. It is a batch of one (CreateTasks).
//
// A create that failed because the database was away (a failover, a
// restart) is tried again within the call's deadline (retry.go). The id is
// fixed before the first try, so a try that committed although its answer
// was lost is found by the next one: its task, created with this spec
// (queue.Task.SameSpec), is the answer, and no second task is made.
func (s *Store) CreateTask(ctx context.Context, id uuid.UUID, spec queue.TaskSpec, opts ...CreateOpts) (queue.Task, error) {
	var o CreateOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	t, _, err := s.submitOne(ctx, id, spec, o, false)
	return t, err
}

// SubmitTask is CreateTask for a client that may send the same create
// again: one that chose the id and did not learn whether its first try
// committed (a lost answer, a coordinator restart, a database failover).
// When a task with that id exists already and was created with the same
// spec (queue.Task.SameSpec), SubmitTask returns it with created false;
// with another spec it fails with queue.ErrConflict.
func (s *Store) SubmitTask(ctx context.Context, id uuid.UUID, spec queue.TaskSpec, opts CreateOpts) (t queue.Task, created bool, err error) {
	return s.submitOne(ctx, id, spec, opts, true)
}

// submitOne is createTasks for one task, whose errors need no index.
func (s *Store) submitOne(ctx context.Context, id uuid.UUID, spec queue.TaskSpec, opts CreateOpts, resubmit bool) (queue.Task, bool, error) {
	ts, created, err := s.createTasks(ctx, []NewTask{{ID: id, Spec: spec, SealedSecrets: opts.SealedSecrets}}, opts, resubmit)
	if ie := (*queue.ItemError)(nil); errors.As(err, &ie) {
		err = ie.Err
	}
	if err != nil {
		return queue.Task{}, false, err
	}
	return ts[0], created[0], nil
}

// GetTask returns one task with its node's name.
func (s *Store) GetTask(ctx context.Context, id uuid.UUID) (queue.Task, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var t queue.Task
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		t, err = readTask(ctx, s.pool, id)
		return err
	})
	return t, err
}

// readTask is GetTask within q, a transaction or the pool.
func readTask(ctx context.Context, q querier, id uuid.UUID) (queue.Task, error) {
	const sql = `SELECT ` + taskCols + `, COALESCE(n.name, '') FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id WHERE t.id = $1`
	t, err := scanTaskWithNode(q.QueryRow(ctx, sql, id))
	if err != nil {
		return queue.Task{}, translate(err, fmt.Sprintf("task %s", id))
	}
	return t, nil
}

// TaskFilter narrows ListTasks. Zero values mean "any".
type TaskFilter struct {
	States []queue.State
	NodeID *uuid.UUID
	Limit  int
}

// ListTasks returns tasks, newest first.
func (s *Store) ListTasks(ctx context.Context, f TaskFilter) ([]queue.Task, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var where []string
	var args []any
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		args = append(args, states)
		where = append(where, fmt.Sprintf("t.state = ANY($%d)", len(args)))
	}
	if f.NodeID != nil {
		args = append(args, *f.NodeID)
		where = append(where, fmt.Sprintf("t.node_id = $%d", len(args)))
	}
	limit := f.Limit
	if limit <= 0 || limit > 100000 {
		limit = 100000
	}
	args = append(args, limit)
	q := `SELECT ` + taskCols + `, COALESCE(n.name, '') FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY t.created_at DESC, t.id LIMIT $%d", len(args))
	return s.queryTasks(ctx, "listing tasks", true,
		q, args...)
}

// Events returns a task's history, oldest first.
func (s *Store) Events(ctx context.Context, id uuid.UUID) ([]queue.Event, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "reading events", scanEvent,
		`
SELECT id, task_id, at, COALESCE(from_state, ''), to_state, attempt, node_id, exit_code, reason
FROM task_events WHERE task_id = $1 ORDER BY id`, id)
}

// RequestStop sets a task's desired state to stopped. A task that no agent
// holds yet (pending, or scheduled but not claimed) is stopped on the spot;
// one that an agent holds is left for that agent, which is woken up. It
// returns the task as it stands after the request.
func (s *Store) RequestStop(ctx context.Context, id uuid.UUID, reason string) (queue.Task, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var out queue.Task
	err := s.inTx(ctx, func(tx pgx.Tx) error { return requestStop(ctx, tx, id, reason) })
	if err != nil {
		return queue.Task{}, err
	}
	out, err = s.GetTask(ctx, id)
	return out, err
}

// requestStop is RequestStop within tx.
func requestStop(ctx context.Context, tx pgx.Tx, id uuid.UUID, reason string) error {
	var state queue.State
	var node *uuid.UUID
	err := tx.QueryRow(ctx, `UPDATE tasks SET desired_state = 'stopped', updated_at = now()
WHERE id = $1 RETURNING state, node_id`, id).Scan(&state, &node)
	if err != nil {
		return translate(err, fmt.Sprintf("task %s", id))
	}
	switch {
	case state == queue.Pending || state == queue.Scheduled:
		if _, _, err := transition(ctx, tx, stateChange{TaskID: id, To: queue.Stopped, Reason: reason}); err != nil {
			return err
		}
	case node != nil && !state.Terminal():
		if _, err := tx.Exec(ctx, `SELECT orch_wake_node($1, 'stop')`, *node); err != nil {
			return translate(err, "notifying agent")
		}
	}
	return nil
}
