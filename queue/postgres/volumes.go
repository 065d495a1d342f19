package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// This file holds named volumes (00040_volumes.sql): the scheduling pass
// records where one lives when it first places a task naming it
// (schedule.go); a user's delete is a request the node's agent carries out
// and reports.

// volumeInUseSQL finds a placed task that mounts the volume $1.
const volumeInUseSQL = `SELECT t.id, t.name FROM tasks t
WHERE t.state IN ('scheduled', 'starting', 'running') AND t.volumes @> jsonb_build_array(jsonb_build_object('source', $1::text))
ORDER BY t.created_at LIMIT 1`

// ListVolumes returns every named volume with its node and how many live
// tasks mount it, by name.
func (s *Store) ListVolumes(ctx context.Context) ([]queue.Volume, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "listing volumes", scanVolume,
		`SELECT v.name, v.node_id, COALESCE(n.name, ''), v.created_at, v.delete_requested_at, v.error,
    (SELECT count(*) FROM tasks t WHERE t.node_id = v.node_id AND t.state IN ('scheduled', 'starting', 'running')
        AND t.volumes @> jsonb_build_array(jsonb_build_object('source', v.name)))
FROM volumes v LEFT JOIN nodes n ON n.id = v.node_id ORDER BY v.name`)
}

// RequestVolumeDelete asks the agent of the volume's node to remove it, and
// wakes that agent. A volume that a placed task mounts is not deleted
// (queue.ErrConflict naming the task); one unknown is queue.ErrNotFound.
// The volume's row is locked first, so a pass placing a task on it either
// commits before (and the task is found) or waits and then fails on the
// trigger of 00040 (and places it on no node until the volume is gone).
func (s *Store) RequestVolumeDelete(ctx context.Context, name string) (queue.Volume, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var v queue.Volume
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT name, node_id, created_at FROM volumes WHERE name = $1 FOR UPDATE`, name).
			Scan(&v.Name, &v.NodeID, &v.CreatedAt)
		if err != nil {
			return translate(err, "volume "+name)
		}
		var taskID uuid.UUID
		var taskName string
		err = tx.QueryRow(ctx, volumeInUseSQL, name).Scan(&taskID, &taskName)
		switch {
		case err == nil:
			return fmt.Errorf("%w: volume %s is mounted by task %s (%s): stop it first", queue.ErrConflict, name, taskName, taskID)
		case !errors.Is(err, pgx.ErrNoRows):
			return translate(err, "volume "+name)
		}
		if err := tx.QueryRow(ctx, `UPDATE volumes SET delete_requested_at = COALESCE(delete_requested_at, now()), error = ''
WHERE name = $1 RETURNING delete_requested_at`, name).Scan(&v.DeleteRequestedAt); err != nil {
			return translate(err, "volume "+name)
		}
		if _, err := tx.Exec(ctx, `SELECT orch_wake_node($1, 'volumes')`, v.NodeID); err != nil {
			return translate(err, "notifying agent")
		}
		return nil
	})
	return v, err
}

// VolumeDeletes returns the names of node's volumes that users asked to
// delete.
func (s *Store) VolumeDeletes(ctx context.Context, node uuid.UUID) ([]string, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "reading volume deletions", scanOne[string],
		`SELECT name FROM volumes WHERE node_id = $1 AND delete_requested_at IS NOT NULL ORDER BY name`, node)
}

// VolumeRemoved records what node's agent did with a volume to delete:
// removed it (failed nil: the row goes), or not yet (the row stays to be
// deleted, with why: the agent tries again at its next sync, as the
// container that held it may just be going away).
func (s *Store) VolumeRemoved(ctx context.Context, node uuid.UUID, name string, failed error) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var err error
	if failed == nil {
		_, err = s.pool.Exec(ctx, `DELETE FROM volumes WHERE name = $1 AND node_id = $2 AND delete_requested_at IS NOT NULL`, name, node)
	} else {
		_, err = s.pool.Exec(ctx, `UPDATE volumes SET error = $3
WHERE name = $1 AND node_id = $2 AND delete_requested_at IS NOT NULL AND error IS DISTINCT FROM $3`, name, node, failed.Error())
	}
	return translate(err, "recording volume "+name)
}

// ReportVolumes records the named volumes node's engine holds that the
// database does not know of, as living on node; a name already recorded
// (on this node or another) is left as it is.
func (s *Store) ReportVolumes(ctx context.Context, node uuid.UUID, names []string) error {
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO volumes (name, node_id) SELECT n, $1 FROM unnest($2::text[]) AS n
ON CONFLICT (name) DO NOTHING`, node, names)
	return translate(err, "reporting volumes")
}

// scanVolume scans a row of ListVolumes: the volume, its node's name and its live tasks.
func scanVolume(r pgx.Row) (queue.Volume, error) {
	var v queue.Volume
	err := r.Scan(&v.Name, &v.NodeID, &v.NodeName, &v.CreatedAt, &v.DeleteRequestedAt, &v.Error, &v.Tasks)
	return v, err
}
