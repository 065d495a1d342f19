package postgres

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// NewTask is one task of a batch to create: its id (uuid.Nil for a fresh
// one), its validated spec and its sealed secrets, if any.
type NewTask struct {
	ID            uuid.UUID
	Spec          queue.TaskSpec
	SealedSecrets []byte
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
}

// createTasksSQL stores a batch of new pending tasks, their sealed secrets
// and their first events, in one statement.
const createTasksSQL = `
WITH r AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
        id uuid, name text, image text, command jsonb, env jsonb, labels jsonb,
        cpu_millis bigint, memory_bytes bigint, disk_bytes bigint, restart_policy text, max_restarts integer,
        ports jsonb, strategy text, constraints jsonb, health_check jsonb, privileged boolean, network text,
        stop_after_disconnect_ms bigint, secret_keys jsonb, pids_limit bigint, sealed text, volumes jsonb)
), ins AS (
    INSERT INTO tasks (id, name, image, command, env, labels, cpu_millis, memory_bytes, disk_bytes,
                       restart_policy, max_restarts, ports, strategy, constraints, health_check,
                       privileged, network, stop_after_disconnect_ms, secret_keys, pids_limit, volumes)
    SELECT id, name, image, ARRAY(SELECT jsonb_array_elements_text(command)), env, labels,
           cpu_millis, memory_bytes, disk_bytes, restart_policy, max_restarts, ports, strategy, constraints,
           health_check, privileged, network, stop_after_disconnect_ms,
           ARRAY(SELECT jsonb_array_elements_text(secret_keys)), pids_limit, COALESCE(volumes, '[]')
    FROM r
    RETURNING *
), sec AS (
    INSERT INTO task_secrets (task_id, sealed)
    SELECT id, decode(sealed, 'base64') FROM r WHERE sealed IS NOT NULL
), ev AS (
    INSERT INTO task_events (task_id, from_state, to_state, attempt, reason)
    SELECT id, NULL, state, attempt, 'created' FROM ins
)
SELECT ` + taskCols + ` FROM ins t`

// MaxBatch bounds the tasks of one CreateTasks.
const MaxBatch = 1000

// CreateTasks stores a batch of new pending tasks in one transaction (one
// commit for all of them), then wakes the schedulers unless opts say
// Quiet. The specs must have been validated. It returns the tasks in the
// order given.
func (s *Store) CreateTasks(ctx context.Context, batch []NewTask, opts CreateOpts) ([]queue.Task, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if len(batch) == 0 {
		return nil, nil
	}
	if len(batch) > MaxBatch {
		return nil, queue.Invalid("tasks", fmt.Sprintf("%d tasks in one batch, the limit is %d", len(batch), MaxBatch), "send them in several requests")
	}
	rows := make([]newTaskRow, len(batch))
	order := make(map[uuid.UUID]int, len(batch))
	for i, nt := range batch {
		r, err := rowOf(nt)
		if err != nil {
			return nil, err
		}
		if _, dup := order[r.ID]; dup {
			return nil, queue.Invalid("id", fmt.Sprintf("task id %s is given twice", r.ID), "give each task its own id")
		}
		rows[i], order[r.ID] = r, i
	}
	qrows, err := s.pool.Query(ctx, createTasksSQL, rows)
	if err != nil {
		return nil, translate(err, "creating tasks")
	}
	created, err := collectTasks(qrows, false)
	if err != nil {
		return nil, translate(err, "creating tasks")
	}
	out := make([]queue.Task, len(batch))
	for _, t := range created {
		out[order[t.ID]] = t
	}
	if !opts.Quiet {
		s.wakeAsync(ctx, ChannelPending)
	}
	return out, nil
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
