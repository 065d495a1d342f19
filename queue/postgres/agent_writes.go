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

// batchTask is what WriteBatch reads of a task it writes about, under lock,
// and what the batch makes of it: the row as the batch leaves it, and the
// events of its changes.
type batchTask struct {
	queue.Task
	step int

	locked        queue.State // the state it was locked in
	lease         queue.Lease // as locked: the row is written only if it still holds
	changed       bool
	started       bool // went to running: started_at is now
	healthChanged bool // health_at is now
	delay         *float64
	events        []batchEvent
	order         int // first write about it, to keep the batch's order
}

// batchEvent is one change's row of task_events.
type batchEvent struct {
	from, to queue.State
	attempt  int
	node     uuid.UUID
	exitCode *int
	reason   string
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
		bt.locked, bt.lease = bt.State, bt.Lease()
		tasks[bt.ID] = bt
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, translate(err, "locking the tasks written about")
	}

	results := make([]WriteResult, len(writes))
	var touched []*batchTask
	for i, w := range writes {
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
			if !bt.changed {
				bt.changed, bt.order = true, len(touched)
				touched = append(touched, bt)
			}
			bt.apply(tr)
			results[i].State = bt.State
		}
	}
	if len(touched) == 0 {
		return results, nil
	}
	n, err := writeRows(ctx, tx, touched)
	if err != nil {
		return nil, err
	}
	if n != len(touched) {
		// Every row was locked and checked above: this cannot happen, and
		// the transaction is abandoned rather than half written.
		return nil, fmt.Errorf("writing the batch: %d of %d tasks changed under their lock: %w", n, len(touched), queue.ErrConflict)
	}
	return results, nil
}

// writeRowsSQL writes a batch's tasks as the batch leaves them, and their
// events, in one statement (each row fenced by the state, attempt and node
// it was locked in), and wakes the schedulers when one of them went back to
// the queue. It is transitionSQL for many tasks at once, its rules applied
// in Go (batchTask.apply) on rows the batch holds locked.
const writeRowsSQL = `
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::uuid[], $5::text[], $6::text[], $7::int[],
                         $8::text[], $9::text[], $10::int[], $11::int[], $12::bool[], $13::bool[],
                         $14::float8[], $15::text[], $16::bool[])
        AS r(id, from_state, attempt, node_id, state, container_id, exit_code, error, reason, restarts,
             backoff_step, started, finished, delay, health, health_changed)
), upd AS (
    UPDATE tasks t SET
        state        = r.state,
        node_id      = CASE WHEN r.state = 'pending' THEN NULL ELSE t.node_id END,
        container_id = r.container_id,
        exit_code    = r.exit_code,
        error        = r.error,
        reason       = r.reason,
        restarts     = r.restarts,
        backoff_step = r.backoff_step,
        started_at   = CASE WHEN r.started THEN now() ELSE t.started_at END,
        finished_at  = CASE WHEN r.finished THEN now() ELSE t.finished_at END,
        not_before   = CASE WHEN r.state = 'pending' AND r.delay IS NOT NULL THEN now() + make_interval(secs => r.delay) END,
        queued_at    = CASE WHEN r.state = 'pending' AND r.delay IS NOT NULL THEN now() + make_interval(secs => r.delay)
                            ELSE t.queued_at END,
        health       = r.health,
        health_at    = CASE WHEN r.health_changed THEN now() ELSE t.health_at END,
        updated_at   = now()
    FROM r
    WHERE t.id = r.id AND t.state = r.from_state AND t.attempt = r.attempt AND t.node_id = r.node_id
    RETURNING t.id, t.state
), ev AS (
    INSERT INTO task_events (task_id, from_state, to_state, attempt, node_id, exit_code, reason)
    SELECT e.task_id, e.from_state, e.to_state, e.attempt, e.node_id, e.exit_code, e.reason
    FROM unnest($17::uuid[], $18::text[], $19::text[], $20::int[], $21::uuid[], $22::int[], $23::text[])
        WITH ORDINALITY AS e(task_id, from_state, to_state, attempt, node_id, exit_code, reason, ord)
    WHERE e.task_id IN (SELECT id FROM upd)
    ORDER BY e.ord
)
SELECT count(*), CASE WHEN bool_or(state = 'pending') THEN pg_notify('` + ChannelPending + `', '')::text END FROM upd`

// writeRows runs writeRowsSQL for the batch's changed tasks and returns how
// many rows it wrote.
func writeRows(ctx context.Context, tx pgx.Tx, touched []*batchTask) (int, error) {
	k := len(touched)
	ids, nodes := make([]uuid.UUID, k), make([]uuid.UUID, k)
	from, states, containers, errs, reasons, healths := make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k)
	attempts, restarts, steps := make([]int32, k), make([]int32, k), make([]int32, k)
	codes := make([]*int32, k)
	started, finished, healthChanged := make([]bool, k), make([]bool, k), make([]bool, k)
	delays := make([]*float64, k)
	var evTask, evNode []uuid.UUID
	var evFrom, evTo, evReason []string
	var evAttempt []int32
	var evCode []*int32
	for i, bt := range touched {
		t := &bt.Task
		ids[i], nodes[i], from[i], attempts[i] = t.ID, bt.lease.NodeID, string(bt.locked), int32(bt.lease.Attempt)
		states[i], containers[i], errs[i], reasons[i] = string(t.State), t.ContainerID, t.Error, t.Reason
		restarts[i], steps[i] = int32(t.Restarts), int32(bt.step)
		if t.ExitCode != nil {
			c := int32(*t.ExitCode)
			codes[i] = &c
		}
		started[i], finished[i], delays[i] = bt.started, t.State.Terminal(), bt.delay
		healths[i] = string(t.Health)
		healthChanged[i] = bt.healthChanged
		for _, e := range bt.events {
			evTask, evFrom, evTo, evNode, evReason = append(evTask, t.ID), append(evFrom, string(e.from)), append(evTo, string(e.to)),
				append(evNode, e.node), append(evReason, e.reason)
			evAttempt = append(evAttempt, int32(e.attempt))
			var c *int32
			if e.exitCode != nil {
				v := int32(*e.exitCode)
				c = &v
			}
			evCode = append(evCode, c)
		}
	}
	var n int
	var ignored *string
	err := tx.QueryRow(ctx, writeRowsSQL, ids, from, attempts, nodes, states, containers, codes, errs, reasons,
		restarts, steps, started, finished, delays, healths, healthChanged,
		evTask, evFrom, evTo, evAttempt, evNode, evCode, evReason).Scan(&n, &ignored)
	if err != nil {
		return 0, translate(err, "recording the agent's writes")
	}
	return n, nil
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

// apply makes a change on the batch's copy of the task by the rules of
// transitionSQL (a change to pending of a task asked to stop ends it
// stopped, health follows the state, and so on) and records its event, so
// that a later write of the batch about the same task decides on the task
// as it will be, and writeRows writes the row as it ends up.
func (bt *batchTask) apply(tr stateChange) {
	t := &bt.Task
	from := t.State
	to := tr.To
	reason := tr.Reason
	if to == queue.Pending && t.DesiredState == queue.DesiredStopped {
		to, reason = queue.Stopped, "stopped on request, instead of: "+tr.Reason
	}
	node := uuid.Nil
	if t.NodeID != nil {
		node = *t.NodeID
	}
	bt.events = append(bt.events, batchEvent{from: from, to: to, attempt: t.Attempt, node: node, exitCode: tr.ExitCode, reason: reason})

	newHealth := queue.HealthNone
	switch {
	case to == queue.Running && t.HealthCheck != nil:
		newHealth = queue.HealthStarting
	case to.Terminal():
		newHealth = t.Health
	}
	if newHealth != t.Health {
		bt.healthChanged = true
	}
	t.Health = newHealth
	t.State = to
	switch {
	case to == queue.Pending:
		t.NodeID, t.ContainerID = nil, ""
	case tr.ContainerID != nil:
		t.ContainerID = *tr.ContainerID
	}
	switch {
	case tr.ExitCode != nil:
		c := *tr.ExitCode
		t.ExitCode = &c
	case to == queue.Starting || to == queue.Running:
		t.ExitCode = nil
	}
	switch {
	case tr.Error != nil:
		t.Error = *tr.Error
	case to == queue.Running:
		t.Error = ""
	}
	t.Reason = ""
	if to == queue.Pending {
		t.Reason = reason
		if tr.Restart {
			t.Restarts++
		}
	}
	if tr.BackoffStep != nil {
		bt.step = *tr.BackoffStep
	}
	if to == queue.Running {
		bt.started = true
		now := time.Now()
		t.StartedAt = &now
	}
	bt.delay = nil
	if to == queue.Pending && tr.Delay != nil {
		d := tr.Delay.Seconds()
		bt.delay = &d
	}
}

// one runs a single agent write.
func (s *Store) one(ctx context.Context, w AgentWrite) (queue.State, error) {
	res, err := s.WriteBatch(ctx, []AgentWrite{w})
	if err != nil {
		return "", err
	}
	return res[0].State, res[0].Err
}
