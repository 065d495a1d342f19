package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// This file holds a job's reconciliation as the store runs it: one
// transaction that takes the job's row (skipping a job another coordinator
// holds), reads what the reconciler needs to see (queue.JobView), lets it
// decide, and writes the plan: new tasks (pending, placed by the
// scheduling passes as any task), stop requests, in-place moves,
// deployment rows, the job's status, a revert, a periodic launch. A crash
// in between leaves nothing half done.

// Decider is the pure half of a reconciliation: scheduler.Reconcile.
type Decider func(queue.JobView) queue.JobPlan

// Sealer seals a version's secrets, sealed for secretsID, for a new task of
// it; the coordinator holds the key.
type Sealer func(task, secretsID uuid.UUID, sealed []byte) ([]byte, error)

// ReconcileResult says what one reconciliation did.
type ReconcileResult struct {
	// Done is false when the job was not due or another coordinator held it.
	Done    bool
	Created int
	Stopped int
	Plan    queue.JobPlan
}

// KeepInstances is how many finished instances of a periodic job are kept;
// older ones are deleted with their tasks as new ones launch.
const KeepInstances = 20

// DueJobs returns up to limit jobs that are due for a reconciliation, the
// most overdue first, and how long until the next one is due when none is.
func (s *Store) DueJobs(ctx context.Context, limit int) ([]uuid.UUID, time.Duration, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT j.id FROM jobs j JOIN job_changes c ON c.job_id = j.id
WHERE j.eval_at <= now() OR c.seq > j.evaluated_seq ORDER BY j.eval_at LIMIT $1`, limit)
	if err != nil {
		return nil, 0, translate(err, "finding due jobs")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) > 0 {
		return ids, 0, translate(err, "finding due jobs")
	}
	var secs *float64
	err = s.pool.QueryRow(ctx, `SELECT extract(epoch FROM min(eval_at) - now())::float8 FROM jobs`).Scan(&secs)
	if err != nil || secs == nil {
		return nil, time.Hour, translate(err, "finding due jobs")
	}
	return nil, time.Duration(*secs * float64(time.Second)), nil
}

// lockDueJobSQL takes a due job's row, unless another coordinator holds
// it, with the spec of its version and the count of its changes read
// before its tasks are (a change committed after this read makes it due
// again).
const lockDueJobSQL = `SELECT ` + jobCols + `, c.seq, now(), COALESCE(j.last_tick, j.created_at)
FROM jobs j JOIN job_versions v ON v.job_id = j.id AND v.version = j.version JOIN job_changes c ON c.job_id = j.id
WHERE j.id = $1 AND (j.eval_at <= now() OR c.seq > j.evaluated_seq)
FOR NO KEY UPDATE OF j SKIP LOCKED`

// jobTasksSQL reads a job's tasks as the reconciler sees them: those that
// have not ended, and those that ended within the window ($3 seconds), or
// all ($2). healthy_since is on the database's clock.
const jobTasksSQL = `SELECT t.id, t.job_index, t.job_version, t.state, t.desired_state, t.health, COALESCE(n.name, ''),
    COALESCE((SELECT c->>'value' FROM jsonb_array_elements(t.constraints) c WHERE c->>'key' = '` + queue.ConstraintNodeName + `' LIMIT 1), ''),
    CASE WHEN t.state = 'running' THEN
        CASE WHEN t.health_check IS NULL THEN t.started_at WHEN t.health = 'healthy' THEN t.health_at END END,
    t.restarts, t.created_at, t.finished_at, t.error
FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id
WHERE t.job_id = $1 AND ($2 OR t.state NOT IN ('completed', 'failed', 'stopped')
                         OR t.finished_at > now() - make_interval(secs => $3::float8))`

// ReconcileJob reconciles one job if it is due and no other coordinator
// holds it, in one transaction.
func (s *Store) ReconcileJob(ctx context.Context, id uuid.UUID, decide Decider, seal Sealer) (ReconcileResult, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var res ReconcileResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		res = ReconcileResult{}
		var seq int64
		var v queue.JobView
		var err error
		v.Job, err = scanJob(tx.QueryRow(ctx, lockDueJobSQL, id), &seq, &v.Now, &v.LastTick)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // not due, or another coordinator has it
		}
		if err != nil {
			return translate(err, fmt.Sprintf("job %s", id))
		}
		cur, err := readJobView(ctx, tx, &v)
		if err != nil {
			return err
		}
		res.Done, res.Plan = true, decide(v)
		res.Created, res.Stopped = len(res.Plan.Create), len(res.Plan.Stop)
		return applyPlan(ctx, tx, &v, cur, seq, res.Plan, seal)
	})
	if err != nil {
		return ReconcileResult{}, fmt.Errorf("reconciling job %s: %w", id, err)
	}
	if res.Done {
		s.awaitJobChanges(ctx, id)
	}
	return res, nil
}

// awaitJobChangesSQL waits for the transactions in flight that changed the
// job's tasks (they hold its job_changes row) to end. The lock is released
// at once, and the transaction commits without waiting for a flush: it
// writes nothing that matters.
const awaitJobChangesSQL = `WITH ` + asyncCommitCTE + `
SELECT 1 FROM job_changes, async_commit WHERE job_id = $1 FOR SHARE OF job_changes`

// awaitJobChanges closes the one gap in the job wake-ups (sql/00025): a
// change of a job's task that commits while a reconciliation of the job
// that did not see it commits too does not notify, because the job looked
// due already. Once such changes have ended, the caller's next look for
// due jobs finds the job due again. It is a hint like a notification:
// should it fail, the poll finds the job.
func (s *Store) awaitJobChanges(ctx context.Context, id uuid.UUID) {
	_, _ = s.pool.Exec(ctx, awaitJobChangesSQL, id)
}

// readJobView reads the rest of the view of the locked job v.Job, in one
// round trip, and returns the row of its version.
func readJobView(ctx context.Context, tx pgx.Tx, v *queue.JobView) (versionRow, error) {
	var cur versionRow
	v.Keys = map[int]string{}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+versionCols+` FROM job_versions WHERE job_id = $1 AND version = $2`, v.Job.ID, v.Job.Version).QueryRow(func(row pgx.Row) error {
		return row.Scan(&cur.Version, &cur.Spec, &cur.TemplateKey, &cur.Generation, &cur.SecretKeys, &cur.SecretsID, &cur.Sealed, &cur.Reason)
	})
	b.Queue(`SELECT version, template_key FROM job_versions WHERE job_id = $1`, v.Job.ID).Query(func(rows pgx.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var n int
			var k string
			if err := rows.Scan(&n, &k); err != nil {
				return err
			}
			v.Keys[n] = k
		}
		return rows.Err()
	})
	b.Queue(`SELECT `+deploymentCols+` FROM deployments WHERE job_id = $1 ORDER BY version DESC LIMIT 1`, v.Job.ID).Query(func(rows pgx.Rows) error {
		defer rows.Close()
		for rows.Next() {
			d, err := scanDeployment(rows)
			if err != nil {
				return err
			}
			v.Deployment = &d
		}
		return rows.Err()
	})
	all := v.Job.Type == queue.JobBatch || v.Job.Stopped
	b.Queue(jobTasksSQL, v.Job.ID, all, queue.ReplaceWindow.Seconds()).Query(func(rows pgx.Rows) error {
		var err error
		v.Tasks, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (queue.JobTask, error) {
			var t queue.JobTask
			err := r.Scan(&t.ID, &t.Index, &t.Version, &t.State, &t.DesiredState, &t.Health, &t.NodeName, &t.Pin,
				&t.HealthySince, &t.Restarts, &t.CreatedAt, &t.FinishedAt, &t.Error)
			return t, err
		})
		return err
	})
	if v.Job.Type == queue.JobSystem {
		b.Queue(liveSums + `SELECT ` + nodeCols + nodesFrom + ` ORDER BY n.name`).Query(func(rows pgx.Rows) error {
			var err error
			v.Nodes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (queue.Node, error) { return scanNode(r) })
			return err
		})
	}
	if v.Job.Type == queue.JobPeriodic {
		b.Queue(`SELECT count(*) FILTER (WHERE c.status = 'running'),
    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = c.id AND t.state NOT IN ('completed', 'failed', 'stopped')))
FROM jobs c WHERE c.parent_id = $1`, v.Job.ID).QueryRow(func(row pgx.Row) error {
			return row.Scan(&v.ChildrenRunning, &v.ChildrenLive)
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return cur, translate(err, "reading job")
	}
	return cur, nil
}

// applyPlan writes what the reconciler decided.
func applyPlan(ctx context.Context, tx pgx.Tx, v *queue.JobView, cur versionRow, seq int64, p queue.JobPlan, seal Sealer) error {
	job := v.Job
	if p.Delete {
		return deleteJob(ctx, tx, job.ID)
	}
	if len(p.InPlace) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE tasks SET job_version = $2, updated_at = now()
WHERE id = ANY($1) AND state NOT IN ('completed', 'failed', 'stopped')`, p.InPlace, job.Version); err != nil {
			return translate(err, "moving tasks to the job's version")
		}
	}
	for _, st := range p.Stop {
		if err := requestStop(ctx, tx, st.ID, st.Reason); err != nil {
			return err
		}
	}
	if err := createJobTasks(ctx, tx, job, cur, p.Create, seal); err != nil {
		return err
	}
	for _, d := range p.Deployments {
		if _, err := tx.Exec(ctx, `INSERT INTO deployments (`+deploymentCols+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, promoted = deployments.promoted OR EXCLUDED.promoted,
    desired = EXCLUDED.desired, placed = EXCLUDED.placed, healthy = EXCLUDED.healthy, unhealthy = EXCLUDED.unhealthy,
    reason = EXCLUDED.reason, progress_deadline_at = EXCLUDED.progress_deadline_at, ended_at = EXCLUDED.ended_at`,
			d.ID, d.JobID, d.Version, string(d.State), d.Canaries, d.Promoted, d.Desired, d.Placed, d.Healthy, d.Unhealthy,
			d.Reason, d.StartedAt, d.ProgressDeadline, d.EndedAt); err != nil {
			return translate(err, "writing deployment")
		}
	}
	var stable *int
	if p.Stable > 0 {
		stable = &p.Stable
	}
	if _, err := tx.Exec(ctx, `UPDATE jobs SET status = $2, status_reason = $3, eval_at = $4, evaluated_seq = $5,
    stable_version = COALESCE($6, stable_version), last_tick = COALESCE($7, last_tick),
    updated_at = CASE WHEN status <> $2 OR status_reason <> $3 THEN now() ELSE updated_at END
WHERE id = $1`, job.ID, string(p.Status), p.StatusReason, p.NextEval, seq, stable, p.Launch); err != nil {
		return translate(err, "recording reconciliation")
	}
	if p.Revert > 0 {
		old, err := readVersion(ctx, tx, job.ID, p.Revert)
		if err != nil {
			return err
		}
		old.Version, old.Reason = job.Version+1, p.RevertReason
		if err := insertVersion(ctx, tx, job.ID, old); err != nil {
			return err
		}
	}
	if p.Launch != nil {
		return launch(ctx, tx, job, cur, *p.Launch, p.LaunchSkipped)
	}
	return nil
}

// createJobTasks inserts the plan's new tasks, in one statement (the one
// every task is made by, tasks_batch.go).
func createJobTasks(ctx context.Context, tx pgx.Tx, job queue.Job, cur versionRow, create []queue.NewJobTask, seal Sealer) error {
	if len(create) == 0 {
		return nil
	}
	batch := make([]NewTask, 0, len(create))
	for _, c := range create {
		spec, err := job.Spec.TaskSpec(c.Index)
		if err != nil {
			return err
		}
		if c.Node != "" {
			spec.Constraints = append(spec.Constraints, queue.Constraint{Key: queue.ConstraintNodeName, Op: queue.OpEqual, Value: c.Node})
		}
		nt := NewTask{ID: uuid.Must(uuid.NewV7()), Spec: spec, job: &jobTask{ID: job.ID, Version: c.Version, Index: c.Index, Delay: c.Delay}}
		if len(cur.SecretKeys) > 0 {
			if seal == nil || cur.SecretsID == nil {
				return fmt.Errorf("%w: job %s has secrets but this coordinator has no secrets key", queue.ErrInvalid, job.Name)
			}
			spec.Secrets = secretNames(cur.SecretKeys)
			nt.Spec = spec
			if nt.SealedSecrets, err = seal(nt.ID, *cur.SecretsID, cur.Sealed); err != nil {
				return fmt.Errorf("sealing the secrets of %s: %w", spec.Name, err)
			}
		}
		batch = append(batch, nt)
	}
	// A plan makes at most a job's count of tasks, but stay within what
	// one statement takes.
	for len(batch) > 0 {
		n := min(len(batch), MaxBatch)
		rows, err := rowsOf(batch[:n])
		if err != nil {
			return err
		}
		if _, err := insertTasks(ctx, tx, insertTasksSQL, rows); err != nil {
			return fmt.Errorf("creating job tasks: %w", err)
		}
		batch = batch[n:]
	}
	return nil
}

// launch records a periodic job's tick (the row is the launch: a tick
// another coordinator recorded already launches nothing here) and starts
// its instance, a batch job of the periodic job's spec, unless the tick is
// skipped. The oldest finished instance beyond KeepInstances goes.
func launch(ctx context.Context, tx pgx.Tx, job queue.Job, cur versionRow, tick time.Time, skipped string) error {
	tag, err := tx.Exec(ctx, `INSERT INTO periodic_launches (job_id, tick, skipped) VALUES ($1, $2, $3)
ON CONFLICT (job_id, tick) DO NOTHING`, job.ID, tick, skipped)
	if err != nil {
		return translate(err, "recording launch")
	}
	if tag.RowsAffected() == 0 || skipped != "" {
		return nil
	}
	child := uuid.Must(uuid.NewV7())
	spec := job.Spec
	spec.Name, spec.Type, spec.Periodic = fmt.Sprintf("%s.periodic-%d", job.Name, tick.Unix()), queue.JobBatch, nil
	if _, err := tx.Exec(ctx, `INSERT INTO jobs (id, name, type, parent_id, version) VALUES ($1, $2, 'batch', $3, 1)`, child, spec.Name, job.ID); err != nil {
		return translate(err, "launching instance")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO job_changes (job_id) VALUES ($1)`, child); err != nil {
		return translate(err, "launching instance")
	}
	v := cur
	v.Version, v.Spec, v.Reason = 1, spec, fmt.Sprintf("launched by %s for %s", job.Name, tick.Format(time.RFC3339))
	if err := insertVersion(ctx, tx, child, v); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE periodic_launches SET child_id = $3 WHERE job_id = $1 AND tick = $2`, job.ID, tick, child); err != nil {
		return translate(err, "recording launch")
	}
	var old uuid.UUID
	err = tx.QueryRow(ctx, `SELECT id FROM jobs c WHERE parent_id = $1 AND status <> 'running'
  AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = c.id AND t.state NOT IN ('completed', 'failed', 'stopped'))
ORDER BY created_at DESC OFFSET $2 LIMIT 1`, job.ID, KeepInstances).Scan(&old)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return translate(err, "finding old instances")
	}
	return deleteJob(ctx, tx, old)
}

// deleteJob deletes a job with its instances and everything they own:
// versions, deployments, launches, and their tasks, which have all ended,
// with everything recorded about them (as retention deletes a task).
func deleteJob(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	var ids []uuid.UUID
	rows, err := tx.Query(ctx, `SELECT id FROM jobs WHERE id = $1 OR parent_id = $1`, id)
	if err != nil {
		return translate(err, "deleting job")
	}
	if ids, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
		return translate(err, "deleting job")
	}
	for {
		var n int
		if err := tx.QueryRow(ctx, expireSQL, "infinity", purgeBatch, nil, ids).Scan(&n); err != nil {
			return translate(err, "deleting job tasks")
		}
		if n < purgeBatch {
			break
		}
	}
	_, err = tx.Exec(ctx, `DELETE FROM jobs WHERE id = $1`, id)
	return translate(err, "deleting job")
}

// purgeBatch bounds one statement of a job's deletion.
const purgeBatch = 5000
