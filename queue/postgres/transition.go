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
// writes the new state, releases the node's reservation when the task stops
// holding one, appends the event and wakes the schedulers when the task needs
// placing again. Zero rows back means the change was refused.
const transitionSQL = `
WITH old AS (
    SELECT id, state, node_id, attempt, cpu_millis, memory_bytes, disk_bytes, health,
        CASE
            -- a task that starts running has passed no probe yet; one that
            -- ends keeps its last health (the why of an unhealthy end); one
            -- that waits for a node has none
            WHEN $2::text = 'running' THEN CASE WHEN health_check IS NULL THEN '' ELSE 'starting' END
            WHEN $2::text IN ('completed', 'failed', 'stopped') THEN health
            ELSE ''
        END AS new_health
    FROM tasks WHERE id = $1 FOR UPDATE
), upd AS (
    UPDATE tasks t SET
        state        = $2::text,
        node_id      = CASE WHEN $2::text = 'pending' THEN NULL ELSE t.node_id END,
        container_id = CASE WHEN $2::text = 'pending' THEN '' ELSE COALESCE($6::text, t.container_id) END,
        exit_code    = CASE WHEN $7::int IS NOT NULL THEN $7::int
                            WHEN $2::text IN ('starting', 'running') THEN NULL ELSE t.exit_code END,
        error        = CASE WHEN $8::text IS NOT NULL THEN $8::text
                            WHEN $2::text = 'running' THEN '' ELSE t.error END,
        reason       = CASE WHEN $2::text = 'pending' THEN $9::text ELSE '' END,
        restarts     = t.restarts + $10::int,
        backoff_step = COALESCE($12::int, t.backoff_step),
        started_at   = CASE WHEN $2::text = 'running' THEN now() ELSE t.started_at END,
        finished_at  = CASE WHEN $2::text IN ('completed', 'failed', 'stopped') THEN now() ELSE t.finished_at END,
        not_before   = CASE WHEN $2::text = 'pending' AND $11::float8 IS NOT NULL
                            THEN now() + make_interval(secs => $11::float8) END,
        health       = old.new_health,
        health_at    = CASE WHEN old.new_health <> old.health THEN now() ELSE t.health_at END,
        updated_at   = now()
    FROM old
    WHERE t.id = old.id
      AND old.state = ANY($3::text[])
      AND ($4::int IS NULL OR (old.attempt = $4::int AND old.node_id = $5::uuid))
    RETURNING t.id, old.state AS from_state, old.node_id AS old_node, t.attempt,
              old.cpu_millis, old.memory_bytes, old.disk_bytes
), rel AS (
    UPDATE nodes n SET
        reserved_cpu_millis   = n.reserved_cpu_millis - u.cpu_millis,
        reserved_memory_bytes = n.reserved_memory_bytes - u.memory_bytes,
        reserved_disk_bytes   = n.reserved_disk_bytes - u.disk_bytes,
        updated_at = now()
    FROM upd u
    WHERE n.id = u.old_node
      AND u.from_state IN ('scheduled', 'starting', 'running')
      AND $2::text NOT IN ('scheduled', 'starting', 'running')
), unport AS (
    -- host ports are held exactly as long as the reservation (see node_ports)
    DELETE FROM node_ports np USING upd u
    WHERE np.task_id = u.id AND $2::text NOT IN ('scheduled', 'starting', 'running')
), ev AS (
    INSERT INTO task_events (task_id, from_state, to_state, attempt, node_id, exit_code, reason)
    SELECT id, from_state, $2::text, attempt, old_node, $7::int, $9::text FROM upd
)
SELECT from_state, CASE WHEN $2::text = 'pending' THEN pg_notify('` + ChannelPending + `', '')::text END
FROM upd`

// transition applies tr on q and returns the state the task left. A refused
// change wraps queue.ErrNotFound, queue.ErrNotOwner or
// queue.ErrInvalidTransition, and writes nothing.
func transition(ctx context.Context, q querier, tr stateChange) (queue.State, error) {
	if !tr.To.Valid() {
		return "", fmt.Errorf("%w: unknown target state %q", queue.ErrInvalidTransition, tr.To)
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
	var from queue.State
	var ignored *string
	err := q.QueryRow(ctx, transitionSQL, tr.TaskID, string(tr.To), src, attempt, node,
		tr.ContainerID, tr.ExitCode, tr.Error, tr.Reason, restart, delay, tr.BackoffStep).Scan(&from, &ignored)
	if err == nil {
		return from, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", translate(err, fmt.Sprintf("moving task %s to %s", tr.TaskID, tr.To))
	}
	return "", refusal(ctx, q, tr)
}

// refusal explains why transitionSQL changed nothing.
func refusal(ctx context.Context, q querier, tr stateChange) error {
	var state queue.State
	var attempt int
	var node *uuid.UUID
	err := q.QueryRow(ctx, `SELECT state, attempt, node_id FROM tasks WHERE id = $1`, tr.TaskID).Scan(&state, &attempt, &node)
	if err != nil {
		return translate(err, fmt.Sprintf("task %s", tr.TaskID))
	}
	if tr.Lease != nil && (attempt != tr.Lease.Attempt || node == nil || *node != tr.Lease.NodeID) {
		return fmt.Errorf("task %s attempt %d on node %s: %w (now attempt %d)", tr.TaskID, tr.Lease.Attempt, tr.Lease.NodeID, queue.ErrNotOwner, attempt)
	}
	if err := queue.CheckTransition(state, tr.To); err != nil {
		return fmt.Errorf("task %s: %w", tr.TaskID, err)
	}
	return fmt.Errorf("task %s changed while moving it to %s: %w", tr.TaskID, tr.To, queue.ErrConflict)
}
