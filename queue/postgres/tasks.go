package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

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
// is what most callers do.
//
// A create that failed because the database was away (a failover, a
// restart) is tried again within the call's deadline (retry.go). The id is
// fixed before the first try, so a try that committed although its answer
// was lost is found by the next one: its task, created with this spec
// (queue.Task.SameSpec), is the answer, and no second task is made.
func (s *Store) CreateTask(ctx context.Context, id uuid.UUID, spec queue.TaskSpec, opts ...CreateOpts) (queue.Task, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var o CreateOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	if id == uuid.Nil {
		id = uuid.Must(uuid.NewV7())
	}
	q, args, err := insertTask(newTask{ID: id, Spec: spec, Sealed: o.SealedSecrets})
	if err != nil {
		return queue.Task{}, err
	}
	var t queue.Task
	mayHaveCommitted := false
	err = s.retry(ctx, func(ctx context.Context) error {
		var err error
		t, err = scanTask(s.pool.QueryRow(ctx, q, args...))
		if err != nil && mayHaveCommitted && uniqueViolation(err) {
			if stored, gerr := s.GetTask(ctx, id); gerr == nil && stored.SameSpec(spec) {
				t, err = stored, nil
			}
		}
		mayHaveCommitted = mayHaveCommitted || transient(err)
		return err
	})
	if err != nil {
		err = translate(err, "creating task")
		if errors.Is(err, errNameTaken) {
			err = s.nameTaken(ctx, spec.Name, err)
		}
		return queue.Task{}, err
	}
	if !o.Quiet {
		s.wakeAsync(ctx, ChannelPending)
	}
	return t, nil
}

// nameTaken is the error for a create whose name a live task has: it names
// that task (or, if it is gone meanwhile, says err).
func (s *Store) nameTaken(ctx context.Context, name string, err error) error {
	var id uuid.UUID
	var state queue.State
	if s.pool.QueryRow(ctx, `SELECT id, state FROM tasks WHERE name = $1 AND job_id IS NULL
AND state IN ('pending', 'scheduled', 'starting', 'running')`, name).Scan(&id, &state) != nil {
		return err
	}
	return fmt.Errorf("%w: task %s (%s) is named %s: a name belongs to one live task at a time; stop that one (orch task delete %s) or choose another name",
		queue.ErrConflict, id, state, name, name)
}

// SubmitTask is CreateTask for a client that may send the same create
// again: one that chose the id and did not learn whether its first try
// committed (a lost answer, a coordinator restart, a database failover).
// When a task with that id exists already and was created with the same
// spec (queue.Task.SameSpec), SubmitTask returns it with created false;
// with another spec it fails with queue.ErrConflict.
func (s *Store) SubmitTask(ctx context.Context, id uuid.UUID, spec queue.TaskSpec, opts CreateOpts) (t queue.Task, created bool, err error) {
	t, err = s.CreateTask(ctx, id, spec, opts)
	if err == nil || id == uuid.Nil || !errors.Is(err, queue.ErrConflict) {
		return t, err == nil, err
	}
	// The id, or the name, is taken (when both are, PostgreSQL may name
	// either index): is it this task?
	stored, gerr := s.GetTask(ctx, id)
	if errors.Is(gerr, queue.ErrNotFound) {
		return queue.Task{}, false, err
	}
	if gerr != nil {
		return queue.Task{}, false, gerr
	}
	if !stored.SameSpec(spec) {
		return queue.Task{}, false, fmt.Errorf("task %s exists with another spec: %w: send the same spec to get it back, or leave out the id", id, queue.ErrConflict)
	}
	return stored, false, nil
}

// newTask is a task to insert: its spec, its sealed secrets and, for a
// job's task, its job (jobs_reconcile.go).
type newTask struct {
	ID     uuid.UUID
	Spec   queue.TaskSpec
	Sealed []byte
	// JobID, JobVersion and JobIndex name a job's task; Delay holds it
	// back from placement (a replacement's backoff).
	JobID      *uuid.UUID
	JobVersion int
	JobIndex   int
	Delay      time.Duration
}

// insertTaskSQL inserts one pending task with its secrets and its first
// event, and returns it.
const insertTaskSQL = `
WITH ins AS (
    INSERT INTO tasks (id, name, image, command, env, labels, cpu_millis, memory_bytes, disk_bytes,
                       restart_policy, max_restarts, ports, strategy, constraints, health_check,
                       privileged, network, stop_after_disconnect_ms, secret_keys, pids_limit,
                       job_id, job_version, job_index, not_before, queued_at, volumes)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
            $22, $23, $24,
            CASE WHEN $25::float8 > 0 THEN now() + make_interval(secs => $25::float8) END,
            now() + make_interval(secs => $25::float8), $27)
    RETURNING *
), sec AS (
    INSERT INTO task_secrets (task_id, sealed) SELECT id, $21::bytea FROM ins WHERE $21::bytea IS NOT NULL
), ev AS (
    INSERT INTO task_events (task_id, from_state, to_state, attempt, reason)
    SELECT id, NULL, state, attempt, CASE WHEN job_id IS NULL THEN 'created' ELSE $26::text END FROM ins
)
SELECT ` + taskCols + ` FROM ins t`

// insertTask returns the statement and arguments that insert nt.
func insertTask(nt newTask) (string, []any, error) {
	spec := nt.Spec
	if nt.ID == uuid.Nil {
		nt.ID = uuid.Must(uuid.NewV7())
	}
	if spec.Name == "" {
		spec.Name = "task-" + queue.ShortID(nt.ID)
	}
	env, labels, ports := spec.Env, spec.Labels, spec.Ports
	if env == nil {
		env = map[string]string{}
	}
	if labels == nil {
		labels = map[string]string{}
	}
	if ports == nil {
		ports = []queue.Port{}
	}
	cmd := spec.Command
	if cmd == nil {
		cmd = []string{}
	}
	constraints := spec.Constraints
	if constraints == nil {
		constraints = []queue.Constraint{}
	}
	volumes := spec.Volumes
	if volumes == nil {
		volumes = []queue.Mount{}
	}
	secretKeys := make([]string, 0, len(spec.Secrets))
	for k := range spec.Secrets {
		secretKeys = append(secretKeys, k)
	}
	sort.Strings(secretKeys)
	if len(secretKeys) > 0 && len(nt.Sealed) == 0 {
		return "", nil, fmt.Errorf("%w: secrets %v were not sealed", queue.ErrInvalid, secretKeys)
	}
	var sealed []byte
	if len(nt.Sealed) > 0 {
		sealed = nt.Sealed
	}
	var version, index *int
	why := ""
	if nt.JobID != nil {
		version, index = &nt.JobVersion, &nt.JobIndex
		why = fmt.Sprintf("created by job version %d", nt.JobVersion)
	}
	return insertTaskSQL, []any{nt.ID, spec.Name, spec.Image, cmd, env, labels,
		spec.Resources.CPUMillis, spec.Resources.MemoryBytes, spec.Resources.DiskBytes,
		string(spec.RestartPolicy), spec.MaxRestarts, ports, spec.Strategy, constraints, spec.HealthCheck,
		spec.Privileged, spec.Network, time.Duration(spec.StopAfterDisconnect).Milliseconds(),
		secretKeys, spec.PidsLimit, sealed, nt.JobID, version, index, nt.Delay.Seconds(), why, volumes}, nil
}

// GetTask returns one task with its node's name.
func (s *Store) GetTask(ctx context.Context, id uuid.UUID) (queue.Task, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	q := `SELECT ` + taskCols + `, COALESCE(n.name, '') FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id WHERE t.id = $1`
	var t queue.Task
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		t, err = scanTaskWithNode(s.pool.QueryRow(ctx, q, id))
		return err
	})
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
	var tasks []queue.Task
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		tasks, err = collectTasks(rows, true)
		return err
	})
	if err != nil {
		return nil, translate(err, "listing tasks")
	}
	return tasks, nil
}

// Events returns a task's history, oldest first.
func (s *Store) Events(ctx context.Context, id uuid.UUID) ([]queue.Event, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
SELECT id, task_id, at, COALESCE(from_state, ''), to_state, attempt, node_id, exit_code, reason
FROM task_events WHERE task_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, translate(err, "reading events")
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queue.Event, error) {
		var e queue.Event
		err := r.Scan(&e.ID, &e.TaskID, &e.At, &e.From, &e.To, &e.Attempt, &e.NodeID, &e.ExitCode, &e.Reason)
		return e, err
	})
	if err != nil {
		return nil, translate(err, "reading events")
	}
	return evs, nil
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
