package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// This file holds an agent's side of its leases (queue.Lease: a task's
// attempt on a node): what it reads about the tasks it holds, and every
// write it makes about them. Each write names the lease, and changes
// nothing once the task has moved on (queue.ErrNotOwner).

// NodeTasks returns the tasks an agent holds on node: starting or running.
func (s *Store) NodeTasks(ctx context.Context, node uuid.UUID) ([]queue.Task, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return s.queryTasks(ctx, "reading node tasks", false,
		`SELECT `+taskCols+` FROM tasks t
WHERE t.node_id = $1 AND t.state IN ('starting', 'running') ORDER BY t.id`, node)
}

// StopRequests returns the tasks on node that an agent runs and a user asked to stop.
func (s *Store) StopRequests(ctx context.Context, node uuid.UUID) ([]queue.Task, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "reading stop requests", scanTask, `SELECT `+taskCols+` FROM tasks t
WHERE t.node_id = $1 AND t.state IN ('starting', 'running') AND t.desired_state = 'stopped' ORDER BY t.id`, node)
}

// MarkRunning records that the lease's container is running (see
// WriteBatch, which records many writes at once).
func (s *Store) MarkRunning(ctx context.Context, l queue.Lease, containerID string) error {
	_, err := s.one(ctx, AgentWrite{Lease: l, Running: &containerID})
	return err
}

// TaskSecrets returns the sealed secrets of the lease's task (nil when it
// has none), for its agent to open just before it starts the container.
// Only the agent of the node holding the task may read them; a stale lease
// reads nothing and wraps queue.ErrNotOwner.
func (s *Store) TaskSecrets(ctx context.Context, l queue.Lease) ([]byte, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var sealed []byte
	var owned bool
	err := s.pool.QueryRow(ctx, `SELECT t.attempt = $2 AND t.node_id IS NOT DISTINCT FROM $3,
    (SELECT s.sealed FROM task_secrets s WHERE s.task_id = t.id)
FROM tasks t WHERE t.id = $1`, l.TaskID, l.Attempt, l.NodeID).Scan(&owned, &sealed)
	if err != nil {
		return nil, translate(err, fmt.Sprintf("secrets of task %s", l.TaskID))
	}
	if !owned {
		return nil, fmt.Errorf("secrets of task %s attempt %d: %w", l.TaskID, l.Attempt, queue.ErrNotOwner)
	}
	return sealed, nil
}

// ExitReport is how one attempt of a task ended, as its agent saw it.
type ExitReport struct {
	// Code is the container's exit code (ignored when StartFailed).
	Code int
	// Error is what went wrong, if anything: the engine's error, "killed: out
	// of memory", the failed probe.
	Error string
	// StartFailed means the container could not be started.
	StartFailed bool
	// Unhealthy means the agent killed the container because its health
	// check failed: a failure, whatever the exit code.
	Unhealthy bool
	// Stopped means the agent stopped the container because a user asked.
	Stopped bool
	// Evicted means the agent stopped the container because its node is
	// draining: the task moves to another node, which is not a restart.
	Evicted bool
	// Disconnected means the agent stopped the container because it had
	// been out of touch with the database for the task's
	// stop_after_disconnect (Error says how long): the task is placed
	// again, as for a lost node, which is not a restart either.
	Disconnected bool
	// Backoff sets the delay before a restart.
	Backoff queue.Backoff
}

// failed reports whether the attempt counts as a failure for the restart policy.
func (r ExitReport) failed() bool { return r.StartFailed || r.Unhealthy || r.Code != 0 }

// why describes the end of the attempt for the task's history.
func (r ExitReport) why() string {
	switch {
	case r.StartFailed:
		return r.Error
	case r.Unhealthy:
		return "health check failed: " + r.Error
	}
	why := fmt.Sprintf("exited with code %d", r.Code)
	if r.Error != "" {
		why += ": " + r.Error
	}
	return why
}

// RecordExit writes how the lease's attempt ended and what follows from it
// (see decideExit), in one transaction, and returns the state the task is
// in now. A stale lease changes nothing and wraps queue.ErrNotOwner; an exit
// recorded already is not recorded again.
func (s *Store) RecordExit(ctx context.Context, l queue.Lease, r ExitReport) (queue.State, error) {
	return s.one(ctx, AgentWrite{Lease: l, Exit: &r})
}

// Requeue hands a task its agent cannot run back to the queue, to be placed
// again at once (on another node, if its own is unhealthy): the engine
// failed before the container started. It is not a restart of the task.
func (s *Store) Requeue(ctx context.Context, l queue.Lease, reason string) error {
	_, err := s.one(ctx, AgentWrite{Lease: l, Requeue: reason})
	return err
}

// SetTaskHealth records what the lease's health check found. It is fenced
// like every agent write, and only applies to a running task; it is not a
// state change, so it writes no event (what the health check does to the
// task — a restart — is one).
func (s *Store) SetTaskHealth(ctx context.Context, l queue.Lease, h queue.TaskHealth, detail string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE tasks SET health = $4, health_detail = $5,
    health_at = CASE WHEN health <> $4 THEN now() ELSE health_at END, updated_at = now()
WHERE id = $1 AND attempt = $2 AND node_id = $3 AND state = 'running'`, l.TaskID, l.Attempt, l.NodeID, string(h), detail)
	if err != nil {
		return translate(err, fmt.Sprintf("recording health of task %s", l.TaskID))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("health of task %s attempt %d: %w", l.TaskID, l.Attempt, queue.ErrNotOwner)
	}
	return nil
}
