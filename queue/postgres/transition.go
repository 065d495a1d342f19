package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orchd/orch/queue"
)

// stateChange is one change of a task's state, with what comes with it.
type stateChange struct {
	TaskID uuid.UUID
	To     queue.State
	// Lease, when set, fences the write: it applies only while the task is
	// still on that node at that attempt. Agents always set it.
	Lease *queue.Lease
	// Optional fields written with the change.
	ContainerID *string
	ExitCode    *int
	Error       *string
	Reason      string
	// Restart counts this change as a restart of the task.
	Restart bool
	// Delay, with To pending, holds the task back from placement for that
	// long (not_before): a restart's backoff. Nil places it at once.
	Delay *time.Duration
	// BackoffStep, when set, is the backoff exponent of the next restart.
	BackoffStep *int
}

// querier is what transition needs: the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// transitionSQL changes one task's state in one statement: it locks the row,
// checks the source state (from queue's transition table) and the lease,
// writes the new state, appends the event and wakes the schedulers when the
// task needs placing again. Zero rows back means the change was refused.
// The node's reservation and host ports are released by a trigger when the
// task leaves its live states (00011_agent_isolation.sql).
//
// A task whose user asked it to stop is never sent back to the queue: a
// change to pending ends it stopped instead, whoever asks for it (a lost
// node, a drain, an agent handing it back), since no scheduling pass would
// ever take it again. The state it ends in is returned with the one it left.
const transitionSQL = `
WITH old AS (
    SELECT id, state, node_id, attempt, health, desired_state, target,
        CASE
            -- a task that starts running has passed no probe yet; one that
            -- ends keeps its last health (the why of an unhealthy end); one
            -- that waits for a node has none
            WHEN target = 'running' THEN CASE WHEN health_check IS NULL THEN '' ELSE 'starting' END
            WHEN target IN ('completed', 'failed', 'stopped') THEN health
            ELSE ''
        END AS new_health
    FROM (SELECT t.*, CASE WHEN $2::text = 'pending' AND t.desired_state = 'stopped' THEN 'stopped' ELSE $2::text END AS target
          FROM tasks t WHERE t.id = $1 FOR UPDATE) locked
), upd AS (
    UPDATE tasks t SET
        state        = old.target,
        node_id      = CASE WHEN old.target = 'pending' THEN NULL ELSE t.node_id END,
        container_id = CASE WHEN old.target = 'pending' THEN '' ELSE COALESCE($6::text, t.container_id) END,
        exit_code    = CASE WHEN $7::int IS NOT NULL THEN $7::int
                            WHEN old.target IN ('starting', 'running') THEN NULL ELSE t.exit_code END,
        error        = CASE WHEN $8::text IS NOT NULL THEN $8::text
                            WHEN old.target = 'running' THEN '' ELSE t.error END,
        reason       = CASE WHEN old.target = 'pending' THEN $9::text ELSE '' END,
        restarts     = t.restarts + CASE WHEN old.target = 'pending' THEN $10::int ELSE 0 END,
        backoff_step = COALESCE($12::int, t.backoff_step),
        started_at   = CASE WHEN old.target = 'running' THEN now() ELSE t.started_at END,
        finished_at  = CASE WHEN old.target IN ('completed', 'failed', 'stopped') THEN now() ELSE t.finished_at END,
        not_before   = CASE WHEN old.target = 'pending' AND $11::float8 IS NOT NULL
                            THEN now() + make_interval(secs => $11::float8) END,
        -- a restart that waits out its backoff joins the queue when it may
        -- be placed, not where it stood: passes never wade through waiting
        -- tasks to find the ones they may place
        queued_at    = CASE WHEN old.target = 'pending' AND $11::float8 IS NOT NULL
                            THEN now() + make_interval(secs => $11::float8) ELSE t.queued_at END,
        health       = old.new_health,
        health_at    = CASE WHEN old.new_health <> old.health THEN now() ELSE t.health_at END,
        updated_at   = now()
    FROM old
    WHERE t.id = old.id
      AND old.state = ANY($3::text[])
      AND ($4::int IS NULL OR (old.attempt = $4::int AND old.node_id = $5::uuid))
    RETURNING t.id, old.state AS from_state, old.target, old.node_id AS old_node, t.attempt
), ev AS (
    INSERT INTO task_events (task_id, from_state, to_state, attempt, node_id, exit_code, reason)
    SELECT id, from_state, target, attempt, old_node, $7::int,
           CASE WHEN target = $2::text THEN $9::text ELSE 'stopped on request, instead of: ' || $9::text END
    FROM upd
)
SELECT from_state, target, CASE WHEN target = 'pending' THEN pg_notify('` + ChannelPending + `', '')::text END
FROM upd`

// transition applies tr on q and returns the state the task left and the
// one it is in now (tr.To, or stopped for a task asked to stop that tr
// would have sent back to the queue). A refused change wraps
// queue.ErrNotFound, queue.ErrNotOwner or queue.ErrInvalidTransition, and
// writes nothing. A fenced change the task has already undergone — the same
// lease, already in tr.To, with the same container — is repeated from an
// agent that did not hear that its first try committed: it succeeds and
// writes nothing.
func transition(ctx context.Context, q querier, tr stateChange) (from, to queue.State, err error) {
	args, err := transitionArgs(tr)
	if err != nil {
		return "", "", err
	}
	var ignored *string
	err = q.QueryRow(ctx, transitionSQL, args...).Scan(&from, &to, &ignored)
	if err == nil {
		return from, to, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", "", translate(err, fmt.Sprintf("moving task %s to %s", tr.TaskID, tr.To))
	}
	return refusal(ctx, q, tr)
}

// transitionArgs are transitionSQL's parameters for tr.
func transitionArgs(tr stateChange) ([]any, error) {
	if !tr.To.Valid() {
		return nil, fmt.Errorf("%w: unknown target state %q", queue.ErrInvalidTransition, tr.To)
	}
	sources := queue.Sources(tr.To)
	src := make([]string, len(sources))
	for i, s := range sources {
		src[i] = string(s)
	}
	var attempt *int
	var node *uuid.UUID
	if tr.Lease != nil {
		attempt, node = &tr.Lease.Attempt, &tr.Lease.NodeID
	}
	restart := 0
	if tr.Restart {
		restart = 1
	}
	var delay *float64
	if tr.Delay != nil {
		secs := tr.Delay.Seconds()
		delay = &secs
	}
	return []any{tr.TaskID, string(tr.To), src, attempt, node,
		tr.ContainerID, tr.ExitCode, tr.Error, tr.Reason, restart, delay, tr.BackoffStep}, nil
}

// refusal explains why transitionSQL changed nothing, or finds that a
// fenced change had already been made (see transition).
func refusal(ctx context.Context, q querier, tr stateChange) (from, to queue.State, err error) {
	var state queue.State
	var attempt int
	var node *uuid.UUID
	var container string
	err = q.QueryRow(ctx, `SELECT state, attempt, node_id, container_id FROM tasks WHERE id = $1`, tr.TaskID).Scan(&state, &attempt, &node, &container)
	if err != nil {
		return "", "", translate(err, fmt.Sprintf("task %s", tr.TaskID))
	}
	if tr.Lease != nil && (attempt != tr.Lease.Attempt || node == nil || *node != tr.Lease.NodeID) {
		return "", "", fmt.Errorf("task %s attempt %d on node %s: %w (now attempt %d)", tr.TaskID, tr.Lease.Attempt, tr.Lease.NodeID, queue.ErrNotOwner, attempt)
	}
	if tr.Lease != nil && state == tr.To && (tr.ContainerID == nil || *tr.ContainerID == container) {
		return state, state, nil // done already: the reply to the first try was lost
	}
	if err := queue.CheckTransition(state, tr.To); err != nil {
		return "", "", fmt.Errorf("task %s: %w", tr.TaskID, err)
	}
	return "", "", fmt.Errorf("task %s changed while moving it to %s: %w", tr.TaskID, tr.To, queue.ErrConflict)
}
