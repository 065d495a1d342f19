package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// PlanView is what a dry run of a spec sees (orch job plan): the view a
// reconciliation of the job would read were spec its new version, and the
// cluster as a scheduling pass would see it, to say where each new task
// would go.
type PlanView struct {
	View queue.JobView
	// Snapshot is the nodes and host ports as a scheduling pass sees them.
	Snapshot queue.Snapshot
	// Exists: the job exists; Changed: spec would make a new version (or
	// resume the stopped job).
	Exists, Changed bool
	// Current and CurrentVersion are the job's version now and its spec
	// (its secrets by name).
	Current        queue.JobSpec
	CurrentVersion int
}

// JobPlanView reads, in a read-only transaction that changes nothing, what
// a dry run of spec needs. Secrets are compared by name only (a dry run
// does not open them).
func (s *Store) JobPlanView(ctx context.Context, spec queue.JobSpec, nodeTimeout time.Duration) (PlanView, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var pv PlanView
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		pv = PlanView{}
		v := &pv.View
		var err error
		v.Job, err = scanJob(tx.QueryRow(ctx, `SELECT `+jobCols+`, now(), COALESCE(j.last_tick, j.created_at)`+jobFrom+` WHERE j.name = $1`, spec.Name),
			&v.Now, &v.LastTick)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&v.Now); err != nil {
				return translate(err, "reading the clock")
			}
			v.Job = queue.Job{Name: spec.Name, Type: spec.Type, Version: 1, Status: queue.JobRunning, Spec: spec}
			v.Keys = map[int]string{1: spec.TemplateKey(0)}
			v.LastTick = v.Now
			pv.Changed = true
			if spec.Type == queue.JobSystem {
				if v.Nodes, err = readNodes(ctx, tx); err != nil {
					return err
				}
			}
		case err != nil:
			return translate(err, fmt.Sprintf("job %s", spec.Name))
		default:
			pv.Exists = true
			if v.Job.Type != spec.Type {
				return fmt.Errorf("job %s is a %s job, not %s: %w: a job's type cannot change", spec.Name, v.Job.Type, spec.Type, queue.ErrConflict)
			}
			cur, err := readJobView(ctx, tx, v)
			if err != nil {
				return err
			}
			pv.Current, pv.CurrentVersion = cur.Spec, cur.Version
			pv.Current.Task.Secrets = secretNames(cur.SecretKeys)
			gen := cur.Generation
			sameSecrets := fmt.Sprint(cur.SecretKeys) == fmt.Sprint(spec.SecretKeys())
			if !sameSecrets {
				gen = 1 << 30 // a fresh generation: every task replaced
			}
			if !sameSecrets || !specEqual(cur.Spec, spec) {
				pv.Changed = true
				v.Job.Version++
				v.Job.Spec = spec
				v.Keys[v.Job.Version] = spec.TemplateKey(gen)
			}
			if v.Job.Stopped { // a run resumes it
				pv.Changed = true
				v.Job.Stopped, v.Job.Purge = false, false
			}
		}
		pv.Snapshot, err = snapshot(ctx, tx, nodeTimeout, false)
		return err
	})
	return pv, err
}

// readNodes reads every node.
func readNodes(ctx context.Context, tx pgx.Tx) ([]queue.Node, error) {
	rows, err := tx.Query(ctx, liveSums+`SELECT `+nodeCols+nodesFrom+` ORDER BY n.name`)
	if err != nil {
		return nil, translate(err, "reading nodes")
	}
	ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queue.Node, error) { return scanNode(r) })
	return ns, translate(err, "reading nodes")
}
