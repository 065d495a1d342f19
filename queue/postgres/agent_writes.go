package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// An agent's writes about its leases — a container runs, a container
// ended, a task handed back — go in batches: every write of one batch in
// one transaction, so that a node ending fifty tasks at once commits once,
// not fifty times (and holds its node's row, whose reservations each end
// releases, for one commit instead of queueing fifty). Each write is still
// fenced by its lease, and decided and recorded as if it were alone: a write
// refused or repeated changes nothing and does not hold up the others.

// AgentWrite is one write of a node's agent about one of its leases. Exactly
// one of Running, Exit and Requeue is set.
type AgentWrite struct {
	Lease queue.Lease
	// Running is the id of the lease's container, which runs.
	Running *string
	// Exit is how the lease's container ended.
	Exit *ExitReport
	// Requeue hands the task back to the queue, with this reason.
	Requeue string
}

// WriteResult is what became of one AgentWrite: the state the task is in
// now, or why the write changed nothing (wrapping queue.ErrNotOwner when the
// lease is no longer the task's).
type WriteResult struct {
	State queue.State
	Err   error
}

// batchTask is what WriteBatch reads of a task it writes about, under lock.
type batchTask struct {
	queue.Task
	step int
}

// WriteBatch applies an agent's writes in one transaction and returns what
// became of each, in order. Writes about the same lease apply in order (a
// container that started and ended within one batch is recorded running,
// then ended). The error is for the batch as a whole (the database is away,
// say); then nothing was written, and the writes may be tried again.
func (s *Store) WriteBatch(ctx context.Context, writes []AgentWrite) ([]WriteResult, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var results []WriteResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		results, err = writeBatch(ctx, tx, writes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// lockBatchSQL locks the tasks of a batch, in id order (the order every
// multi-task transaction takes them in), and reads what deciding each
// write needs, with the database's clock.
const lockBatchSQL = `SELECT ` + taskCols + `, t.backoff_step, now()
FROM tasks t WHERE t.id = ANY($1::uuid[]) ORDER BY t.id FOR UPDATE`

func writeBatch(ctx context.Context, tx pgx.Tx, writes []AgentWrite) ([]WriteResult, error) {
	ids := make([]uuid.UUID, 0, len(writes))
	seen := make(map[uuid.UUID]bool, len(writes))
	for _, w := range writes {
		if !seen[w.Lease.TaskID] {
			seen[w.Lease.TaskID] = true
			ids = append(ids, w.Lease.TaskID)
		}
	}
	rows, err := tx.Query(ctx, lockBatchSQL, ids)
	if err != nil {
		return nil, translate(err, "locking the tasks written about")
	}
	tasks := make(map[uuid.UUID]*batchTask, len(ids))
	var now time.Time
	for rows.Next() {
		bt := &batchTask{}
		if err := rows.Scan(append(taskDest(&bt.Task), &bt.step, &now)...); err != nil {
			rows.Close()
			return nil, translate(err, "locking the tasks written about")
		}
		tasks[bt.ID] = bt
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, translate(err, "locking the tasks written about")
	}

	results := make([]WriteResult, len(writes))
	changes := make([]stateChange, 0, len(writes))
	changeOf := make([]int, len(writes)) // index into changes, or -1
	for i, w := range writes {
		changeOf[i] = -1
		bt, ok := tasks[w.Lease.TaskID]
		if !ok {
			results[i].Err = fmt.Errorf("task %s: %w", w.Lease.TaskID, queue.ErrNotFound)
			continue
		}
		tr, done, err := decide(bt, w, now)
		switch {
		case err != nil:
			results[i].Err = err
		case done:
			results[i].State = bt.State
		default:
			changeOf[i] = len(changes)
			changes = append(changes, tr)
			bt.apply(tr)
			results[i].State = bt.State
		}
	}
	if len(changes) == 0 {
		return results, nil
	}
	applied, err := applyChanges(ctx, tx, changes)
	if err != nil {
		return nil, err
	}
	for i := range writes {
		if c := changeOf[i]; c >= 0 && applied[c].Err != nil {
			results[i] = applied[c]
		}
	}
	return results, nil
}

// decide turns one write into the state change it makes on the task as the
// batch has left it so far; done means the write has been made already (an
// agent repeating it after losing the answer) and changes nothing.
func decide(bt *batchTask, w AgentWrite, now time.Time) (tr stateChange, done bool, err error) {
	l := w.Lease
	t := &bt.Task
	if t.Attempt != l.Attempt || t.NodeID == nil || *t.NodeID != l.NodeID {
		return tr, false, fmt.Errorf("task %s attempt %d on node %s: %w (now attempt %d)", l.TaskID, l.Attempt, l.NodeID, queue.ErrNotOwner, t.Attempt)
	}
	tr = stateChange{TaskID: l.TaskID, Lease: &l}
	switch {
	case w.Running != nil:
		if t.State == queue.Running && t.ContainerID == *w.Running {
			return tr, true, nil
		}
		tr.To, tr.ContainerID, tr.Reason = queue.Running, w.Running, "container started"
	case w.Exit != nil:
		if t.State.Terminal() {
			return tr, true, nil
		}
		decideExit(&tr, bt, *w.Exit, now)
	default:
		tr.To, tr.Reason = queue.Pending, w.Requeue
	}
	if err := queue.CheckTransition(t.State, tr.To); err != nil {
		return tr, false, fmt.Errorf("task %s: %w", l.TaskID, err)
	}
	return tr, false, nil
}

// decideExit is what follows from an attempt's end: the task is stopped (a
// user asked), moved to another node (its node is draining, or its agent
// lost touch with the database), restarted through the queue after its
// backoff (its restart policy says so), or it ends completed or failed.
func decideExit(tr *stateChange, bt *batchTask, r ExitReport, now time.Time) {
	t := &bt.Task
	step := bt.step
	// The backoff starts over after an attempt that ran long enough, by
	// the database's clock (see 00009_backoff_reset.sql).
	if t.State == queue.Running && t.StartedAt != nil && t.StartedAt.Before(now.Add(-r.Backoff.ResetAfter())) {
		step = 0
	}
	tr.Reason = r.why()
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
}

// apply updates the batch's view of the task with a change it is about to
// make, so that a later write of the batch about the same task decides on
// the task as it will be.
func (bt *batchTask) apply(tr stateChange) {
	t := &bt.Task
	to := tr.To
	if to == queue.Pending && t.DesiredState == queue.DesiredStopped {
		to = queue.Stopped
	}
	t.State = to
	if tr.ContainerID != nil {
		t.ContainerID = *tr.ContainerID
	}
	if to == queue.Running {
		now := time.Now()
		t.StartedAt = &now
	}
	if to == queue.Pending {
		t.NodeID = nil
		if tr.Restart {
			t.Restarts++
		}
	}
	if tr.BackoffStep != nil {
		bt.step = *tr.BackoffStep
	}
}

// applyChanges runs the changes of a batch in the transaction, pipelined:
// one round trip for all of them. The WriteResult of a refused change says
// why; the others' are zero.
func applyChanges(ctx context.Context, tx pgx.Tx, changes []stateChange) ([]WriteResult, error) {
	out := make([]WriteResult, len(changes))
	refused := make([]bool, len(changes))
	b := &pgx.Batch{}
	for i, tr := range changes {
		args, err := transitionArgs(tr)
		if err != nil {
			out[i].Err = err
			continue
		}
		b.Queue(transitionSQL, args...).Query(func(rows pgx.Rows) error {
			defer rows.Close()
			refused[i] = !rows.Next()
			return rows.Err()
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, translate(err, "recording the agent's writes")
	}
	for i, tr := range changes {
		if !refused[i] || out[i].Err != nil {
			continue
		}
		if _, _, err := refusal(ctx, tx, tr); err != nil {
			out[i].Err = err
		} else {
			out[i].Err = fmt.Errorf("task %s changed while moving it to %s: %w", tr.TaskID, tr.To, queue.ErrConflict)
		}
	}
	return out, nil
}

// one runs a single agent write.
func (s *Store) one(ctx context.Context, w AgentWrite) (queue.State, error) {
	res, err := s.WriteBatch(ctx, []AgentWrite{w})
	if err != nil {
		return "", err
	}
	return res[0].State, res[0].Err
}
