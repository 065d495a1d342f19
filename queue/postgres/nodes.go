package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// RegisterNode records an agent's machine, or refreshes it when a node of
// that name registered before: the node keeps its id, so tasks placed on it
// before an agent restart are still its own. It goes through
// orch_register_node (00011_agent_isolation.sql), which keeps an agent's
// own database role to its node, to the capacity it is allowed, and out of
// the labels that grant privileges.
func (s *Store) RegisterNode(ctx context.Context, reg queue.NodeRegistration) (queue.Node, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	labels := reg.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	q := `SELECT ` + nodeCols + ` FROM orch_register_node($1, $2, $3, $4, $5, $6, $7, $8) n` + nodeJoin
	n, err := scanNode(s.pool.QueryRow(ctx, q, uuid.Must(uuid.NewV7()), reg.Name, reg.Address, labels,
		reg.Capacity.CPUMillis, reg.Capacity.MemoryBytes, reg.Capacity.DiskBytes, reg.AllowPrivileged))
	if err != nil {
		return queue.Node{}, translate(err, fmt.Sprintf("registering node %q", reg.Name))
	}
	return n, nil
}

const nodeListSQL = liveSums + `SELECT ` + nodeCols + `, COALESCE(r.live_tasks, 0)` + nodesFrom

// nodeGetSQL reads one node, named in the WHERE clause that follows it.
const nodeGetSQL = `SELECT ` + nodeCols + `, COALESCE(r.live_tasks, 0) FROM nodes n` + nodeJoin

// ListNodes returns every node, by name.
func (s *Store) ListNodes(ctx context.Context) ([]queue.Node, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var nodes []queue.Node
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, nodeListSQL+` ORDER BY n.name`)
		if err != nil {
			return err
		}
		nodes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (queue.Node, error) {
			var live int
			n, err := scanNode(r, &live)
			n.LiveTasks = live
			return n, err
		})
		return err
	})
	if err != nil {
		return nil, translate(err, "listing nodes")
	}
	return nodes, nil
}

// GetNode finds a node by id or by name.
func (s *Store) GetNode(ctx context.Context, idOrName string) (queue.Node, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var live int
	var n queue.Node
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		if id, perr := uuid.Parse(idOrName); perr == nil {
			n, err = scanNode(s.pool.QueryRow(ctx, nodeGetSQL+` WHERE n.id = $1`, id), &live)
		} else {
			n, err = scanNode(s.pool.QueryRow(ctx, nodeGetSQL+` WHERE n.name = $1`, idOrName), &live)
		}
		return err
	})
	if err != nil {
		return queue.Node{}, translate(err, fmt.Sprintf("node %q", idOrName))
	}
	n.LiveTasks = live
	return n, nil
}

// SetCordoned marks a node as taking no new work (true) or taking it again.
func (s *Store) SetCordoned(ctx context.Context, idOrName string, cordoned bool) (queue.Node, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	n, err := s.GetNode(ctx, idOrName)
	if err != nil {
		return queue.Node{}, err
	}
	// Uncordoning also ends a drain.
	q := `WITH n AS (
    UPDATE nodes SET cordoned = $2, draining = draining AND $2,
        drain_deadline = CASE WHEN $2 THEN drain_deadline END, updated_at = now() WHERE id = $1 RETURNING *
) SELECT ` + nodeCols + ` FROM n` + nodeJoin
	out, err := scanNode(s.pool.QueryRow(ctx, q, n.ID, cordoned))
	if err != nil {
		return queue.Node{}, translate(err, fmt.Sprintf("cordoning node %q", idOrName))
	}
	out.LiveTasks = n.LiveTasks
	if !cordoned {
		// Pending work may fit now.
		_, _ = s.pool.Exec(ctx, `SELECT pg_notify('`+ChannelPending+`', '')`)
	}
	return out, nil
}

// ClusterFit tells whether any node's whole capacity (down and cordoned
// nodes included: they may come back) could hold r, and the largest
// capacities, in one scan of the nodes.
func (s *Store) ClusterFit(ctx context.Context, r queue.Resources) (queue.ClusterFit, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var f queue.ClusterFit
	err := s.pool.QueryRow(ctx, `
SELECT count(*), COALESCE(bool_or(cpu_millis >= $1 AND memory_bytes >= $2 AND disk_bytes >= $3), false),
       COALESCE(max(cpu_millis), 0), COALESCE(max(memory_bytes), 0), COALESCE(max(disk_bytes), 0)
FROM nodes`, r.CPUMillis, r.MemoryBytes, r.DiskBytes).Scan(&f.Nodes, &f.Fits, &f.Largest.CPUMillis, &f.Largest.MemoryBytes, &f.Largest.DiskBytes)
	if err != nil {
		return f, translate(err, "reading node capacities")
	}
	return f, nil
}
