package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// This file holds the jobs as users change them: submitting a spec (a new
// version when it changed), scaling, reverting, restarting, promoting and
// stopping. Each is one transaction holding the job's row, and leaves the
// job due, so that a coordinator reconciles it at once (jobs_reconcile.go).

// SecretsOpener opens a version's sealed secrets (sealed with the cluster
// key for the version's secrets id); the coordinator holds the key.
type SecretsOpener func(id uuid.UUID, sealed []byte) (map[string]string, error)

// JobSubmission is a spec to run, as orch job run sends it.
type JobSubmission struct {
	// Spec is normalized and validated; its secrets hold their values.
	Spec queue.JobSpec
	// SecretsID and Sealed are the spec's secrets sealed for SecretsID
	// (nil when it has none).
	SecretsID uuid.UUID
	Sealed    []byte
	// Open opens the current version's secrets, to tell whether they
	// changed. It may be nil when neither version has secrets.
	Open SecretsOpener
}

// SubmitResult says what a submission did.
type SubmitResult struct {
	// Created: the job is new. NewVersion: the spec changed, or the job is
	// new. Resumed: the job was stopped and runs again.
	Created, NewVersion, Resumed bool
}

// jobCols is the column list jobQuery selects, in scanJob's order.
const jobCols = `j.id, j.name, j.type, j.version, COALESCE(j.stable_version, 0), j.status, j.status_reason,
    j.stopped, j.purge, j.parent_id, j.created_at, j.updated_at, v.spec`

const jobFrom = ` FROM jobs j JOIN job_versions v ON v.job_id = j.id AND v.version = j.version`

func scanJob(row pgx.Row, extra ...any) (queue.Job, error) {
	var j queue.Job
	err := row.Scan(append([]any{&j.ID, &j.Name, &j.Type, &j.Version, &j.StableVersion, &j.Status, &j.StatusReason,
		&j.Stopped, &j.Purge, &j.ParentID, &j.CreatedAt, &j.UpdatedAt, &j.Spec}, extra...)...)
	return j, err
}

// versionRow is a row of job_versions.
type versionRow struct {
	Version     int
	Spec        queue.JobSpec
	TemplateKey string
	Generation  int
	SecretKeys  []string
	SecretsID   *uuid.UUID
	Sealed      []byte
	Reason      string
}

const versionCols = `version, spec, template_key, generation, secret_keys, secrets_id, sealed_secrets, reason`

func readVersion(ctx context.Context, q querier, job uuid.UUID, version int) (versionRow, error) {
	var v versionRow
	err := q.QueryRow(ctx, `SELECT `+versionCols+` FROM job_versions WHERE job_id = $1 AND version = $2`, job, version).
		Scan(&v.Version, &v.Spec, &v.TemplateKey, &v.Generation, &v.SecretKeys, &v.SecretsID, &v.Sealed, &v.Reason)
	if err != nil {
		return v, translate(err, fmt.Sprintf("version %d", version))
	}
	return v, nil
}

// insertVersion stores v as the job's newest version and makes the job run
// it (again, if it was stopped), due at once.
func insertVersion(ctx context.Context, q querier, job uuid.UUID, v versionRow) error {
	spec, err := json.Marshal(v.Spec.Stored())
	if err != nil {
		return fmt.Errorf("encoding spec: %w", err)
	}
	if v.SecretKeys == nil {
		v.SecretKeys = []string{}
	}
	v.TemplateKey = v.Spec.TemplateKey(v.Generation)
	if _, err := q.Exec(ctx, `INSERT INTO job_versions (job_id, version, spec, template_key, generation, secret_keys, secrets_id, sealed_secrets, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, job, v.Version, spec, v.TemplateKey, v.Generation, v.SecretKeys, v.SecretsID, v.Sealed, v.Reason); err != nil {
		return translate(err, "storing job version")
	}
	_, err = q.Exec(ctx, `UPDATE jobs SET version = $2, stopped = false, purge = false, status = 'running', status_reason = '',
    eval_at = now(), updated_at = now() WHERE id = $1`, job, v.Version)
	return translate(err, "moving job to its new version")
}

// lockJob takes the job's row for a change by a user (waiting for a
// reconciliation that holds it) and returns the job.
func lockJob(ctx context.Context, tx pgx.Tx, name string) (queue.Job, error) {
	j, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobCols+jobFrom+` WHERE j.name = $1 FOR NO KEY UPDATE OF j`, name))
	if err != nil {
		return j, translate(err, fmt.Sprintf("job %s", name))
	}
	return j, nil
}

// maxGeneration is the highest generation of the job's versions: a forced
// replacement takes the next one, which no version had.
func maxGeneration(ctx context.Context, q querier, job uuid.UUID) (int, error) {
	var g int
	err := q.QueryRow(ctx, `SELECT COALESCE(max(generation), 0) FROM job_versions WHERE job_id = $1`, job).Scan(&g)
	return g, translate(err, "reading generations")
}

// SubmitJob runs a spec: a new job at version 1, or, for a job of that
// name, a new version when the spec differs from the job's version (its
// template, count, update strategy, schedule, or its secrets' values). An
// unchanged spec makes no version and restarts nothing; it resumes a
// stopped job. A job's type cannot change.
func (s *Store) SubmitJob(ctx context.Context, sub JobSubmission) (queue.Job, SubmitResult, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var res SubmitResult
	var out queue.Job
	spec := sub.Spec
	secrets := versionRow{SecretKeys: spec.SecretKeys()}
	if len(sub.Sealed) > 0 {
		secrets.SecretsID, secrets.Sealed = &sub.SecretsID, sub.Sealed
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		res = SubmitResult{}
		j, err := lockJob(ctx, tx, spec.Name)
		if errors.Is(err, queue.ErrNotFound) {
			res.Created, res.NewVersion = true, true
			out.ID = uuid.Must(uuid.NewV7())
			if _, err := tx.Exec(ctx, `INSERT INTO jobs (id, name, type, version, last_tick) VALUES ($1, $2, $3, 1,
    CASE WHEN $3 = 'periodic' THEN date_trunc('second', now()) END)`, out.ID, spec.Name, string(spec.Type)); err != nil {
				return translate(err, "creating job")
			}
			if _, err := tx.Exec(ctx, `INSERT INTO job_changes (job_id) VALUES ($1)`, out.ID); err != nil {
				return translate(err, "creating job")
			}
			v := secrets
			v.Version, v.Spec, v.Reason = 1, spec, "submitted"
			return insertVersion(ctx, tx, out.ID, v)
		}
		if err != nil {
			return err
		}
		out.ID = j.ID
		if j.ParentID != nil {
			return fmt.Errorf("job %s is an instance of a periodic job: %w: run the periodic job instead", j.Name, queue.ErrConflict)
		}
		if j.Type != spec.Type {
			return fmt.Errorf("job %s is a %s job, not %s: %w: a job's type cannot change (orch job stop --purge it first)", j.Name, j.Type, spec.Type, queue.ErrConflict)
		}
		cur, err := readVersion(ctx, tx, j.ID, j.Version)
		if err != nil {
			return err
		}
		same, err := sameSecrets(cur, secrets, spec, sub.Open)
		if err != nil {
			return err
		}
		v := secrets
		v.Version, v.Spec, v.Reason, v.Generation = j.Version+1, spec, "submitted", cur.Generation
		if same {
			v.SecretsID, v.Sealed = cur.SecretsID, cur.Sealed // keep the sealed copy the tasks were given
		} else if v.Generation, err = maxGeneration(ctx, tx, j.ID); err != nil {
			return err
		} else {
			v.Generation++ // new secrets: every task is replaced
		}
		if same && specEqual(cur.Spec, spec) {
			if j.Stopped {
				res.Resumed = true
				_, err := tx.Exec(ctx, `UPDATE jobs SET stopped = false, purge = false, status = 'running', status_reason = '',
    eval_at = now(), updated_at = now() WHERE id = $1`, j.ID)
				return translate(err, "resuming job")
			}
			return nil
		}
		res.NewVersion = true
		return insertVersion(ctx, tx, j.ID, v)
	})
	if err != nil {
		return queue.Job{}, SubmitResult{}, err
	}
	out, err = s.GetJob(ctx, spec.Name)
	return out, res, err
}

// specEqual compares two specs as stored (without secret values).
func specEqual(a, b queue.JobSpec) bool {
	ja, _ := json.Marshal(a.Stored())
	jb, _ := json.Marshal(b.Stored())
	return bytes.Equal(ja, jb)
}

// sameSecrets reports whether a submission's secrets are the current
// version's: the same names and, opened, the same values.
func sameSecrets(cur, next versionRow, spec queue.JobSpec, open SecretsOpener) (bool, error) {
	if !slices.Equal(cur.SecretKeys, next.SecretKeys) {
		return false, nil
	}
	if len(cur.SecretKeys) == 0 {
		return true, nil
	}
	if open == nil || cur.SecretsID == nil {
		return false, nil
	}
	values, err := open(*cur.SecretsID, cur.Sealed)
	if err != nil {
		return false, fmt.Errorf("opening the secrets of version %d: %w", cur.Version, err)
	}
	return maps.Equal(values, spec.Task.Secrets), nil
}

// newVersionFrom makes a new version of a job out of one of its versions:
// the base of a scale, a revert and a restart.
func (s *Store) newVersionFrom(ctx context.Context, name string, change func(j queue.Job, v *versionRow, tx pgx.Tx) error) (queue.Job, error) {
	return s.changeJob(ctx, name, func(ctx context.Context, tx pgx.Tx, j queue.Job) error {
		if j.ParentID != nil {
			return fmt.Errorf("job %s is an instance of a periodic job: %w", j.Name, queue.ErrConflict)
		}
		v, err := readVersion(ctx, tx, j.ID, j.Version)
		if err != nil {
			return err
		}
		if err := change(j, &v, tx); err != nil {
			return err
		}
		v.Version = j.Version + 1
		return insertVersion(ctx, tx, j.ID, v)
	})
}

// changeJob runs change in a transaction that holds the lock of job name,
// and returns the job as the change left it.
func (s *Store) changeJob(ctx context.Context, name string, change func(ctx context.Context, tx pgx.Tx, j queue.Job) error) (queue.Job, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := s.withJobLocked(ctx, name, change); err != nil {
		return queue.Job{}, err
	}
	return s.GetJob(ctx, name)
}

// withJobLocked runs fn in a transaction that holds the lock of job name.
func (s *Store) withJobLocked(ctx context.Context, name string, fn func(ctx context.Context, tx pgx.Tx, j queue.Job) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		j, err := lockJob(ctx, tx, name)
		if err != nil {
			return err
		}
		return fn(ctx, tx, j)
	})
}

// ScaleJob submits the job's spec with another count, as a new version;
// its tasks move to it in place.
func (s *Store) ScaleJob(ctx context.Context, name string, count int) (queue.Job, error) {
	return s.newVersionFrom(ctx, name, func(j queue.Job, v *versionRow, _ pgx.Tx) error {
		if j.Type == queue.JobSystem {
			return queue.Invalid("count", "a system job runs one task per eligible node", "change its constraints or datacenters instead")
		}
		v.Spec.Count = count
		if err := v.Spec.Validate(); err != nil {
			return err
		}
		v.Reason = fmt.Sprintf("scaled from %d to %d", j.Spec.Count, count)
		return nil
	})
}

// RevertJob submits the spec (and secrets) of one of the job's versions
// again, as a new version.
func (s *Store) RevertJob(ctx context.Context, name string, version int) (queue.Job, error) {
	return s.newVersionFrom(ctx, name, func(j queue.Job, v *versionRow, tx pgx.Tx) error {
		old, err := readVersion(ctx, tx, j.ID, version)
		if errors.Is(err, queue.ErrNotFound) {
			return queue.Invalid("version", fmt.Sprintf("job %s has no version %d", name, version), "see orch job history "+name)
		}
		if err != nil {
			return err
		}
		*v = old
		v.Reason = fmt.Sprintf("reverted to version %d", version)
		return nil
	})
}

// RestartJob submits the job's spec again as a new version of a new
// generation: every task is replaced, as a rolling update for a service.
func (s *Store) RestartJob(ctx context.Context, name string) (queue.Job, error) {
	return s.newVersionFrom(ctx, name, func(j queue.Job, v *versionRow, tx pgx.Tx) error {
		g, err := maxGeneration(ctx, tx, j.ID)
		if err != nil {
			return err
		}
		v.Generation, v.Reason = g+1, "restarted"
		return nil
	})
}

// StopJob stops a job: its tasks are stopped and it is no longer kept
// running (its periodic instances with it). With purge, the job, its
// versions, deployments, launches and tasks are deleted once nothing of it
// runs any more.
func (s *Store) StopJob(ctx context.Context, name string, purge bool) (queue.Job, error) {
	return s.changeJob(ctx, name, func(ctx context.Context, tx pgx.Tx, j queue.Job) error {
		_, err := tx.Exec(ctx, `UPDATE jobs SET stopped = true, purge = purge OR $2, eval_at = now(), updated_at = now()
WHERE id = $1 OR parent_id = $1`, j.ID, purge)
		return translate(err, "stopping job")
	})
}

// PromoteJob promotes the running deployment of a service that waits with
// healthy canaries: the rest of its tasks are replaced.
func (s *Store) PromoteJob(ctx context.Context, name string) (queue.Deployment, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var d queue.Deployment
	err := s.withJobLocked(ctx, name, func(ctx context.Context, tx pgx.Tx, j queue.Job) error {
		var err error
		d, err = scanDeployment(tx.QueryRow(ctx, `SELECT `+deploymentCols+` FROM deployments
WHERE job_id = $1 AND version = $2`, j.ID, j.Version))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("job %s version %d has no deployment: %w", name, j.Version, queue.ErrConflict)
		}
		if err != nil {
			return translate(err, "reading deployment")
		}
		switch {
		case d.State != queue.DeploymentRunning:
			return fmt.Errorf("the deployment of version %d is %s: %w: nothing to promote", d.Version, d.State, queue.ErrConflict)
		case d.Canaries == 0 || d.Promoted:
			return fmt.Errorf("the deployment of version %d has no canaries waiting: %w", d.Version, queue.ErrConflict)
		case d.Healthy < d.Canaries:
			return fmt.Errorf("%d of %d canaries are healthy: %w: wait for them (orch job status %s)", d.Healthy, d.Canaries, queue.ErrConflict, name)
		}
		d.Promoted = true
		if _, err := tx.Exec(ctx, `UPDATE deployments SET promoted = true, reason = 'promoted' WHERE id = $1`, d.ID); err != nil {
			return translate(err, "promoting")
		}
		_, err = tx.Exec(ctx, `UPDATE jobs SET eval_at = now() WHERE id = $1`, j.ID)
		return translate(err, "promoting")
	})
	return d, err
}
