package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// This file holds what users read about jobs: a job, the list, its
// versions, deployments, tasks, events and endpoints.

const deploymentCols = `id, job_id, version, state, canaries, promoted, desired, placed, healthy, unhealthy,
    reason, started_at, progress_deadline_at, ended_at`

// deploymentAsJSON selects a deployment's columns under queue.Deployment's
// JSON names, for to_jsonb.
const deploymentAsJSON = `id, job_id, version, state, canaries, promoted, desired, placed, healthy, unhealthy,
    reason, started_at, progress_deadline_at AS progress_deadline, ended_at`

func scanDeployment(row pgx.Row) (queue.Deployment, error) {
	var d queue.Deployment
	err := row.Scan(&d.ID, &d.JobID, &d.Version, &d.State, &d.Canaries, &d.Promoted, &d.Desired, &d.Placed,
		&d.Healthy, &d.Unhealthy, &d.Reason, &d.StartedAt, &d.ProgressDeadline, &d.EndedAt)
	return d, err
}

// GetJob returns a job by name, with the spec of its version.
func (s *Store) GetJob(ctx context.Context, name string) (queue.Job, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobCols+jobFrom+` WHERE j.name = $1`, name))
	if err != nil {
		return j, translate(err, fmt.Sprintf("job %s", name))
	}
	return j, nil
}

// JobFilter narrows ListJobs.
type JobFilter struct {
	// Parent lists the instances of a periodic job; without it, jobs that
	// are not instances are listed.
	Parent *uuid.UUID
	// Limit bounds the list (newest instances first); 0: no bound.
	Limit int
}

// ListJobs returns jobs with their task counts and latest deployment,
// by name (a periodic job's instances newest first).
func (s *Store) ListJobs(ctx context.Context, f JobFilter) ([]queue.JobSummary, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	where, order := `j.parent_id IS NULL`, `j.name`
	args := []any{}
	if f.Parent != nil {
		args = append(args, *f.Parent)
		where, order = `j.parent_id = $1`, `j.created_at DESC`
	}
	q := `SELECT ` + jobCols + `,
    (SELECT COALESCE(jsonb_object_agg(state, n), '{}') FROM (SELECT t.state, count(*) AS n FROM tasks t
        WHERE t.job_id = j.id GROUP BY t.state) c),
    (SELECT to_jsonb(d) FROM (SELECT ` + deploymentAsJSON + ` FROM deployments WHERE job_id = j.id ORDER BY version DESC LIMIT 1) d)` +
		jobFrom + ` WHERE ` + where + ` ORDER BY ` + order
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return queryAll(ctx, s, "listing jobs", scanJobSummary,
		q, args...)
}

// JobSummary returns one job as ListJobs shows it.
func (s *Store) JobSummary(ctx context.Context, name string) (queue.JobSummary, error) {
	j, err := s.GetJob(ctx, name)
	if err != nil {
		return queue.JobSummary{}, err
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	js := queue.JobSummary{Job: j}
	err = s.pool.QueryRow(ctx, `SELECT
    (SELECT COALESCE(jsonb_object_agg(state, n), '{}') FROM (SELECT t.state, count(*) AS n FROM tasks t
        WHERE t.job_id = $1 GROUP BY t.state) c),
    (SELECT to_jsonb(d) FROM (SELECT `+deploymentAsJSON+` FROM deployments WHERE job_id = $1 ORDER BY version DESC LIMIT 1) d)`, j.ID).
		Scan(&js.Counts, &js.Deployment)
	return js, translate(err, fmt.Sprintf("job %s", name))
}

// JobVersions returns a job's versions, newest first, each with what
// changed from the one before.
func (s *Store) JobVersions(ctx context.Context, name string) ([]queue.JobVersion, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT v.job_id, v.version, v.spec, v.secret_keys, v.generation, v.template_key, v.reason, v.created_at
FROM job_versions v JOIN jobs j ON j.id = v.job_id WHERE j.name = $1 ORDER BY v.version`, name)
	if err != nil {
		return nil, translate(err, "reading job versions")
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queue.JobVersion, error) {
		var v queue.JobVersion
		err := r.Scan(&v.JobID, &v.Version, &v.Spec, &v.SecretKeys, &v.Generation, &v.TemplateKey, &v.Reason, &v.CreatedAt)
		return v, err
	})
	if err != nil {
		return nil, translate(err, "reading job versions")
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("job %s: %w", name, queue.ErrNotFound)
	}
	out := make([]queue.JobVersion, len(vs))
	for i := range vs {
		v := vs[i]
		if i > 0 {
			prev := vs[i-1].Spec
			prev.Task.Secrets = secretNames(vs[i-1].SecretKeys)
			cur := v.Spec
			cur.Task.Secrets = secretNames(v.SecretKeys)
			v.Diff = queue.DiffSpecs(prev, cur)
			if vs[i-1].Generation != v.Generation {
				v.Diff = append(v.Diff, fmt.Sprintf("generation: %d → %d (every task is replaced)", vs[i-1].Generation, v.Generation))
			}
		}
		out[len(vs)-1-i] = v
	}
	return out, nil
}

// secretNames is a secrets map with names only, for diffs.
func secretNames(keys []string) map[string]string {
	if len(keys) == 0 {
		return nil
	}
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		m[k] = ""
	}
	return m
}

// JobDeployments returns a job's deployments, newest first.
func (s *Store) JobDeployments(ctx context.Context, name string) ([]queue.Deployment, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	j, err := s.GetJob(ctx, name)
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, s, "reading deployments", scanDeployment,
		`SELECT `+deploymentCols+` FROM deployments WHERE job_id = $1 ORDER BY version DESC`, j.ID)
}

// JobTasks returns a job's tasks, live ones first, then the latest that
// ended, at most limit in all (0: 1000).
func (s *Store) JobTasks(ctx context.Context, job uuid.UUID, limit int) ([]queue.Task, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if limit <= 0 {
		limit = 1000
	}
	return queryAll(ctx, s, "reading job tasks", scanTaskWithNode,
		`SELECT `+taskCols+`, COALESCE(n.name, '') FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id
WHERE t.job_id = $1
ORDER BY t.state IN ('completed', 'failed', 'stopped'), t.job_index, t.created_at DESC LIMIT $2`, job, limit)
}

// JobEvents returns the latest events of a job's tasks, newest first.
func (s *Store) JobEvents(ctx context.Context, job uuid.UUID, limit int) ([]queue.Event, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "reading job events", scanEvent,
		`
SELECT e.id, e.task_id, e.at, COALESCE(e.from_state, ''), e.to_state, e.attempt, e.node_id, e.exit_code, e.reason
FROM task_events e JOIN tasks t ON t.id = e.task_id WHERE t.job_id = $1 ORDER BY e.id DESC LIMIT $2`, job, limit)
}

// JobEndpoints returns the rows of report_job_endpoints for a job.
func (s *Store) JobEndpoints(ctx context.Context, name string) ([]queue.Endpoint, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.GetJob(ctx, name); err != nil {
		return nil, err
	}
	return queryAll(ctx, s, "reading endpoints", scanEndpoint,
		`SELECT job, version, task_id::text, task, node, node_address, host_port, container_port,
    protocol, health, healthy FROM report_job_endpoints WHERE job = $1 ORDER BY task, container_port`, name)
}

// scanJobSummary scans a row of ListJobs: a job, its task counts and its deployment.
func scanJobSummary(r pgx.Row) (queue.JobSummary, error) {
	var js queue.JobSummary
	var err error
	js.Job, err = scanJob(r, &js.Counts, &js.Deployment)
	return js, err
}

// scanEndpoint scans a row of report_job_endpoints (JobEndpoints).
func scanEndpoint(r pgx.Row) (queue.Endpoint, error) {
	var e queue.Endpoint
	err := r.Scan(&e.Job, &e.Version, &e.TaskID, &e.Task, &e.Node, &e.NodeAddress, &e.HostPort, &e.ContainerPort,
		&e.Protocol, &e.Health, &e.Healthy)
	return e, err
}
