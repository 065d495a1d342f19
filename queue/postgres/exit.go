package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

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

// RecordExit writes how the lease's attempt ended and what follows from it,
// in one transaction: the task is stopped (a user asked), moved to another
// node (its node is draining), restarted through the queue after its
// backoff (its restart policy says so: back to pending with not_before set),
// or it ends completed or failed. It returns the state the task is in now.
// A stale lease changes nothing and wraps queue.ErrNotOwner.
func (s *Store) RecordExit(ctx context.Context, l queue.Lease, r ExitReport) (queue.State, error) {
	var to queue.State
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// ranLong: the attempt ran for the backoff's reset time, by the
		// database's clock (see 00009_backoff_reset.sql).
		var t queue.Task
		var step int
		var ranLong bool
		err := tx.QueryRow(ctx, `SELECT `+taskCols+`, t.backoff_step,
    t.state = 'running' AND t.started_at < now() - make_interval(secs => $2::float8)
FROM tasks t WHERE t.id = $1 FOR UPDATE`, l.TaskID, r.Backoff.ResetAfter().Seconds()).Scan(append(taskDest(&t), &step, &ranLong)...)
		if err != nil {
			return translate(err, fmt.Sprintf("task %s", l.TaskID))
		}
		if ranLong {
			step = 0
		}
		if t.Attempt != l.Attempt || t.NodeID == nil || *t.NodeID != l.NodeID {
			return fmt.Errorf("task %s attempt %d on node %s: %w (now attempt %d)", l.TaskID, l.Attempt, l.NodeID, queue.ErrNotOwner, t.Attempt)
		}
		tr := stateChange{TaskID: l.TaskID, Lease: &l, Reason: r.why()}
		if !r.StartFailed {
			code := r.Code
			tr.ExitCode = &code
		}
		errText := r.Error
		if r.Unhealthy {
			errText = tr.Reason
		}
		tr.Error = &errText
		switch {
		case r.Stopped || t.DesiredState == queue.DesiredStopped:
			tr.To, tr.Reason = queue.Stopped, "stopped on request"
		case r.Evicted:
			tr.To, tr.Reason = queue.Pending, "moved: its node is draining"
		case r.Disconnected:
			tr.To, tr.Reason = queue.Pending, "moved: stopped because "+r.Error
		case t.ShouldRestart(r.failed()):
			delay := r.Backoff.Delay(step)
			next := step + 1
			tr.To, tr.Restart, tr.Delay, tr.BackoffStep = queue.Pending, true, &delay, &next
			tr.Reason = t.RestartReason(tr.Reason, delay)
		case r.failed():
			tr.To = queue.Failed
		default:
			tr.To = queue.Completed
		}
		_, err = transition(ctx, tx, tr)
		to = tr.To
		return err
	})
	if err != nil {
		return "", err
	}
	return to, nil
}

// Requeue hands a task its agent cannot run back to the queue, to be placed
// again at once (on another node, if its own is unhealthy): the engine
// failed before the container started. It is not a restart of the task.
func (s *Store) Requeue(ctx context.Context, l queue.Lease, reason string) error {
	_, err := transition(ctx, s.pool, stateChange{TaskID: l.TaskID, To: queue.Pending, Lease: &l, Reason: reason})
	return err
}
