package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// NewTask is one task of a batch to create: its id (uuid.Nil for a fresh
// one), its validated spec and its sealed secrets, if any.
type NewTask struct {
	ID            uuid.UUID
	Spec          queue.TaskSpec
	SealedSecrets []byte

	// job names a job's task (jobs_reconcile.go); nil for a task of its own.
	job *jobTask
}

// jobTask is what a job's task carries besides its spec: its job and
// version, its index, and how long it is held back from placement (a
// replacement's backoff).
type jobTask struct {
	ID      uuid.UUID
	Version int
	Index   int
	Delay   time.Duration
}

// newTaskRow is a NewTask as createTasksSQL reads it, one object of a JSON
// array: a whole batch goes to the server as one parameter.
type newTaskRow struct {
	ID                    uuid.UUID          `json:"id"`
	Name                  string             `json:"name"`
	Image                 string             `json:"image"`
	Command               []string           `json:"command"`
	Env                   map[string]string  `json:"env"`
	Labels                map[string]string  `json:"labels"`
	CPUMillis             int64              `json:"cpu_millis"`
	MemoryBytes           int64              `json:"memory_bytes"`
	DiskBytes             int64              `json:"disk_bytes"`
	RestartPolicy         string             `json:"restart_policy"`
	MaxRestarts           int                `json:"max_restarts"`
	Ports                 []queue.Port       `json:"ports"`
	Strategy              string             `json:"strategy"`
	Constraints           []queue.Constraint `json:"constraints"`
	HealthCheck           *queue.HealthCheck `json:"health_check"`
	Privileged            bool               `json:"privileged"`
	Network               string             `json:"network"`
	StopAfterDisconnectMS int64              `json:"stop_after_disconnect_ms"`
	SecretKeys            []string           `json:"secret_keys"`
	PidsLimit             int64              `json:"pids_limit"`
	Volumes               []queue.Mount      `json:"volumes"`
	Sealed                string             `json:"sealed,omitempty"` // base64
	JobID                 *uuid.UUID         `json:"job_id,omitempty"`
	JobVersion            *int               `json:"job_version,omitempty"`
	JobIndex              *int               `json:"job_index,omitempty"`
	DelaySeconds          float64            `json:"delay_s,omitempty"`
	// Reason is the first event's: "created", or the job version that did.
	Reason string `json:"reason"`
}

// createTasksSQL stores a batch of new pending tasks, their sealed secrets
// and their first events, in one statement: it is the only way tasks are
// made, one at a time (CreateTask), in batches (CreateTasks) or by a job.
// %s is empty, or "ON CONFLICT DO NOTHING" for the pass that sorts out
// which of a batch's ids or names are taken (createTasks).
const createTasksSQL = `
WITH r AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
        id uuid, name text, image text, command jsonb, env jsonb, labels jsonb,
        cpu_millis bigint, memory_bytes bigint, disk_bytes bigint, restart_policy text, max_restarts integer,
        ports jsonb, strategy text, constraints jsonb, health_check jsonb, privileged boolean, network text,
        stop_after_disconnect_ms bigint, secret_keys jsonb, pids_limit bigint, sealed text, volumes jsonb,
        job_id uuid, job_version integer, job_index integer, delay_s float8, reason text)
), ins AS (
    INSERT INTO tasks (id, name, image, command, env, labels, cpu_millis, memory_bytes, disk_bytes,
                       restart_policy, max_restarts, ports, strategy, constraints, health_check,
                       privileged, network, stop_after_disconnect_ms, secret_keys, pids_limit, volumes,
                       job_id, job_version, job_index, not_before, queued_at)
    SELECT id, name, image, ARRAY(SELECT jsonb_array_elements_text(command)), env, labels,
           cpu_millis, memory_bytes, disk_bytes, restart_policy, max_restarts, ports, strategy, constraints,
           health_check, privileged, network, stop_after_disconnect_ms,
           ARRAY(SELECT jsonb_array_elements_text(secret_keys)), pids_limit, COALESCE(volumes, '[]'),
           job_id, job_version, job_index,
           CASE WHEN delay_s > 0 THEN now() + make_interval(secs => delay_s) END,
           now() + make_interval(secs => COALESCE(delay_s, 0))
    FROM r
    %s
    RETURNING *
), sec AS (
    INSERT INTO task_secrets (task_id, sealed)
    SELECT ins.id, decode(r.sealed, 'base64') FROM ins JOIN r ON r.id = ins.id WHERE r.sealed IS NOT NULL
), ev AS (
    INSERT INTO task_events (task_id, from_state, to_state, attempt, reason)
    SELECT ins.id, NULL, ins.state, ins.attempt, r.reason FROM ins JOIN r ON r.id = ins.id
)
SELECT ` + taskCols + ` FROM ins t`

var (
	insertTasksSQL       = fmt.Sprintf(createTasksSQL, "")
	insertTasksSkipTaken = fmt.Sprintf(createTasksSQL, "ON CONFLICT DO NOTHING")
)

// MaxBatch bounds the tasks of one CreateTasks.
const MaxBatch = 1000

// CreateTasks stores a batch of new pending tasks in one transaction (one
// commit for all of them), then wakes the schedulers unless opts say
// Quiet. The specs must have been validated. It returns the tasks in the
// order given. It stores all or nothing: an id or a live name that is
// taken fails the batch with a queue.ItemError naming the task and
// wrapping queue.ErrConflict.
func (s *Store) CreateTasks(ctx context.Context, batch []NewTask, opts CreateOpts) ([]queue.Task, error) {
	tasks, _, err := s.createTasks(ctx, batch, opts, false)
	return tasks, err
}

// SubmitTasks is CreateTasks for a client that may send the same batch
// again (see SubmitTask): a task whose id exists with the same spec is
// answered with the stored task, and created[i] says which were made now.
// A taken id with another spec, or a taken name, fails the whole batch.
func (s *Store) SubmitTasks(ctx context.Context, batch []NewTask, opts CreateOpts) (tasks []queue.Task, created []bool, err error) {
	return s.createTasks(ctx, batch, opts, true)
}

// createTasks is CreateTasks and SubmitTasks. The first try is a single
// statement, which is also a transaction of its own: the usual batch, with
// nothing taken, costs one round trip and one commit. When a unique index
// refuses it, nothing was stored, and a second try in a transaction
// inserts what it can, finds out for each task left over why, and commits
// only if every one of them is a resubmission (or this call's own, stored
// by a try whose answer was lost).
func (s *Store) createTasks(ctx context.Context, batch []NewTask, opts CreateOpts, resubmit bool) ([]queue.Task, []bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if len(batch) == 0 {
		return nil, nil, nil
	}
	if len(batch) > MaxBatch {
		return nil, nil, queue.Invalid("tasks", fmt.Sprintf("%d tasks in one batch, the limit is %d", len(batch), MaxBatch), "send them in several requests")
	}
	rows, err := rowsOf(batch)
	if err != nil {
		return nil, nil, err
	}
	if err := generatedNamesTaken(ctx, s.pool, rows); err != nil {
		return nil, nil, err
	}
	created := make([]bool, len(rows))
	for i := range created {
		created[i] = true
	}
	// The ids are fixed (rowsOf) before the first try, so a try that
	// committed although the database went away before it answered is
	// found by the next one (retry.go): its tasks, of the same spec, are
	// taken as this call's own, whether resubmit or not.
	var out []queue.Task
	mayHaveCommitted := false
	err = s.retry(ctx, func(ctx context.Context) error {
		var err error
		out, err = insertTasks(ctx, s.pool, insertTasksSQL, rows)
		mayHaveCommitted = mayHaveCommitted || transient(err)
		return err
	})
	if errors.Is(err, queue.ErrConflict) {
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			out, created, err = sortOutTaken(ctx, tx, rows, batch, resubmit || mayHaveCommitted)
			return err
		})
	}
	if err != nil {
		return nil, nil, err
	}
	if !opts.Quiet && slices.Contains(created, true) {
		s.wakeAsync(ctx, ChannelPending)
	}
	return out, created, nil
}

// insertTasks runs one of the insertTasks statements and returns the tasks
// it stored, in the order of rows, with zero Tasks for rows it skipped.
func insertTasks(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, rows []newTaskRow) ([]queue.Task, error) {
	qrows, err := q.Query(ctx, sql, rows)
	if err != nil {
		return nil, translate(err, "creating tasks")
	}
	stored, err := collectTasks(qrows, false)
	if err != nil {
		return nil, translate(err, "creating tasks")
	}
	at := make(map[uuid.UUID]int, len(rows))
	for i, r := range rows {
		at[r.ID] = i
	}
	out := make([]queue.Task, len(rows))
	for _, t := range stored {
		out[at[t.ID]] = t
	}
	return out, nil
}

// sortOutTaken inserts the tasks of rows that can be inserted, within tx,
// and looks into each one left out: a resubmission (resubmit, and its id
// exists with the same spec) is answered with the stored task; anything
// else fails the batch with a queue.ItemError.
func sortOutTaken(ctx context.Context, tx pgx.Tx, rows []newTaskRow, batch []NewTask, resubmit bool) ([]queue.Task, []bool, error) {
	out, err := insertTasks(ctx, tx, insertTasksSkipTaken, rows)
	if err != nil {
		return nil, nil, err
	}
	created := make([]bool, len(rows))
	for i, r := range rows {
		if out[i].ID != uuid.Nil {
			created[i] = true
			continue
		}
		stored, err := readTask(ctx, tx, r.ID)
		switch {
		case errors.Is(err, queue.ErrNotFound):
			// Not the id, so the name: a live task has it, maybe one
			// made by an earlier task of this batch.
			return nil, nil, &queue.ItemError{Index: i, Err: nameTaken(ctx, tx, r.Name)}
		case err != nil:
			return nil, nil, err
		case !resubmit:
			return nil, nil, &queue.ItemError{Index: i, Err: fmt.Errorf("creating task: %w: task %s exists", errIDTaken, r.ID)}
		case !stored.SameSpec(batch[i].Spec):
			return nil, nil, &queue.ItemError{Index: i, Err: fmt.Errorf("task %s exists with another spec: %w: send the same spec to get it back, or leave out the id", r.ID, queue.ErrConflict)}
		}
		out[i] = stored
	}
	return out, created, nil
}

// liveNamedSQL finds the live task not of a job named $1: one that was
// given its name through tasks_live_name_key, one created without a name
// (task-<short id>) through the short id's index (sql/00055).
const liveNamedSQL = `
SELECT id, state FROM tasks WHERE name = $1 AND job_id IS NULL
    AND state IN ('pending', 'scheduled', 'starting', 'running') AND name <> 'task-' || right(id::text, 12)
UNION ALL
SELECT id, state FROM tasks WHERE right(id::text, 12) = right($1, 12) AND name = $1 AND job_id IS NULL
    AND state IN ('pending', 'scheduled', 'starting', 'running') AND name = 'task-' || right(id::text, 12)
LIMIT 1`

// generatedName is the shape of the name a task created without one is
// given: task-<its short id>.
var generatedName = regexp.MustCompile(`^task-[0-9a-f]{12}$`)

// generatedNamesTaken refuses a batch that gives a task, on purpose, the
// name a live task created without one was given. tasks_live_name_key
// leaves those names out (sql/00055: so that every change of an unnamed
// task skips it), so this is where one live task per name holds for them.
// It costs nothing unless a name has that shape. Two such creates racing
// would need a user to guess the random end of an id being created.
func generatedNamesTaken(ctx context.Context, q querier, rows []newTaskRow) error {
	var generated map[string]bool
	for i, r := range rows {
		if !generatedName.MatchString(r.Name) || r.Name == "task-"+queue.ShortID(r.ID) {
			continue
		}
		if generated == nil {
			generated = make(map[string]bool, len(rows))
			for _, o := range rows {
				if o.Name == "task-"+queue.ShortID(o.ID) {
					generated[o.Name] = true
				}
			}
		}
		if generated[r.Name] { // an unnamed task of this batch
			return &queue.ItemError{Index: i, Err: fmt.Errorf("creating task: %w: %s", errNameTaken, r.Name)}
		}
		if err := nameTaken(ctx, q, r.Name); !errors.Is(err, errNameTaken) {
			return &queue.ItemError{Index: i, Err: err}
		}
	}
	return nil
}

// nameTaken is the error for a create whose name a live task has: it names
// that task. It wraps errNameTaken when it finds none.
func nameTaken(ctx context.Context, q querier, name string) error {
	var id uuid.UUID
	var state queue.State
	if q.QueryRow(ctx, liveNamedSQL, name).Scan(&id, &state) != nil {
		return fmt.Errorf("creating task: %w: %s", errNameTaken, name)
	}
	return fmt.Errorf("%w: task %s (%s) is named %s: a name belongs to one live task at a time; stop that one (orch task delete %s) or choose another name",
		queue.ErrConflict, id, state, name, name)
}

// rowsOf fills in what the new tasks' rows need, refusing an id given twice.
func rowsOf(batch []NewTask) ([]newTaskRow, error) {
	rows := make([]newTaskRow, len(batch))
	seen := make(map[uuid.UUID]int, len(batch))
	for i, nt := range batch {
		r, err := rowOf(nt)
		if err != nil {
			return nil, &queue.ItemError{Index: i, Err: err}
		}
		if j, dup := seen[r.ID]; dup {
			return nil, &queue.ItemError{Index: i, Err: queue.Invalid("id", fmt.Sprintf("task id %s is given twice, also by task [%d]", r.ID, j), "give each task its own id")}
		}
		rows[i], seen[r.ID] = r, i
	}
	return rows, nil
}

// rowOf fills in what a new task's row needs.
func rowOf(nt NewTask) (newTaskRow, error) {
	spec := nt.Spec
	id := nt.ID
	if id == uuid.Nil {
		id = uuid.Must(uuid.NewV7())
	}
	if spec.Name == "" {
		spec.Name = "task-" + queue.ShortID(id)
	}
	r := newTaskRow{
		ID: id, Name: spec.Name, Image: spec.Image, Command: spec.Command, Env: spec.Env, Labels: spec.Labels,
		CPUMillis: spec.Resources.CPUMillis, MemoryBytes: spec.Resources.MemoryBytes, DiskBytes: spec.Resources.DiskBytes,
		RestartPolicy: string(spec.RestartPolicy), MaxRestarts: spec.MaxRestarts, Ports: spec.Ports,
		Strategy: spec.Strategy, Constraints: spec.Constraints, HealthCheck: spec.HealthCheck,
		Privileged: spec.Privileged, Network: spec.Network,
		StopAfterDisconnectMS: time.Duration(spec.StopAfterDisconnect).Milliseconds(), PidsLimit: spec.PidsLimit,
		Volumes:    spec.Volumes,
		SecretKeys: make([]string, 0, len(spec.Secrets)),
		Reason:     "created",
	}
	if j := nt.job; j != nil {
		r.JobID, r.JobVersion, r.JobIndex, r.DelaySeconds = &j.ID, &j.Version, &j.Index, j.Delay.Seconds()
		r.Reason = fmt.Sprintf("created by job version %d", j.Version)
	}
	for k := range spec.Secrets {
		r.SecretKeys = append(r.SecretKeys, k)
	}
	sort.Strings(r.SecretKeys)
	if len(r.SecretKeys) > 0 && len(nt.SealedSecrets) == 0 {
		return r, fmt.Errorf("%w: secrets %v of task %s were not sealed", queue.ErrInvalid, r.SecretKeys, id)
	}
	if len(nt.SealedSecrets) > 0 {
		r.Sealed = base64.StdEncoding.EncodeToString(nt.SealedSecrets)
	}
	if r.Command == nil {
		r.Command = []string{}
	}
	if r.Env == nil {
		r.Env = map[string]string{}
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	if r.Ports == nil {
		r.Ports = []queue.Port{}
	}
	if r.Constraints == nil {
		r.Constraints = []queue.Constraint{}
	}
	return r, nil
}
