package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// DrainNode starts draining a node, in one transaction: the node is cordoned
// (no new work) and marked draining with a deadline; its tasks that no agent
// has claimed yet go back to pending at once, and its agent is woken. The
// agent then stops its running tasks (each with its stop grace) and hands
// them back to the queue, to be placed on other nodes; whatever is still on
// the node at the deadline is moved by the coordinators' sweeper (and its
// containers removed by the agent). A deadline of 0 moves everything at once.
// Draining again sets a new deadline; uncordoning ends the drain.
func (s *Store) DrainNode(ctx context.Context, idOrName string, deadline time.Duration) (queue.Node, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	n, err := s.GetNode(ctx, idOrName)
	if err != nil {
		return queue.Node{}, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM tasks WHERE node_id = $1 AND state = 'scheduled'
ORDER BY id FOR UPDATE`, n.ID)
		if err != nil {
			return translate(err, "locking the node's tasks")
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return translate(err, "locking the node's tasks")
		}
		if _, err := tx.Exec(ctx, `UPDATE nodes SET cordoned = true, draining = true,
    drain_deadline = now() + make_interval(secs => $2::float8), updated_at = now()
WHERE id = $1`, n.ID, deadline.Seconds()); err != nil {
			return translate(err, fmt.Sprintf("draining node %q", n.Name))
		}
		if len(ids) > 0 {
			reason := fmt.Sprintf("moved: node %s is draining", n.Name)
			if _, err := moveToPending(ctx, tx, n.ID, ids, []string{string(queue.Scheduled)}, reason); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `SELECT orch_wake_node($1, 'drain')`, n.ID)
		return translate(err, "waking the node's agent")
	})
	if err != nil {
		return queue.Node{}, err
	}
	return s.GetNode(ctx, n.ID.String())
}
