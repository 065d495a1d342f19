package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// markDownSQL gives up on nodes whose agents have been silent for longer
// than the timeout, or longer for nodes told to beat less often (see
// 00008_heartbeat_policy.sql). It is idempotent (a down node is left alone), so any
// number of coordinator replicas may run it at once.
//
// The second condition keeps an absence of PostgreSQL itself from looking
// like the death of every node: while the server was down, or while the
// cluster failed over to a standby, no agent could heartbeat, so for a
// timeout after the database came back no node is declared down — the
// agents get that long to reconnect. orch_db_back_since() is that moment:
// the server's start, or the first sweep on a promoted standby (whose own
// start time may be days before the failover; 00045_database_epochs.sql).
const markDownSQL = `
WITH back AS MATERIALIZED (SELECT orch_db_back_since() AS since), n AS (
    UPDATE nodes n SET state = 'down', state_changed_at = now(), updated_at = now()
    FROM back
    WHERE n.state <> 'down'
      AND n.last_heartbeat < now() - node_silence_allowed(n.heartbeat_interval_ms, $1::float8)
      AND back.since < now() - node_silence_allowed(n.heartbeat_interval_ms, $1::float8)
    RETURNING n.*
) SELECT ` + nodeCols + ` FROM n` + nodeJoin

// MarkSilentNodesDown marks down every node not heard from within timeout
// and returns the nodes it marked. Their tasks are moved by EvacuateNode.
func (s *Store) MarkSilentNodesDown(ctx context.Context, timeout time.Duration) ([]queue.Node, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "marking silent nodes down", func(r pgx.Row) (queue.Node, error) { return scanNode(r) },
		markDownSQL, timeout.Seconds())
}

// evacuateCond is when a node's live tasks must move elsewhere: the node is
// down, its engine has not answered for longer than the timeout ($1), or it
// is draining and its deadline has passed.
const evacuateCond = `(n.state = 'down'
    OR (n.state = 'unhealthy' AND n.engine_down_since < now() - make_interval(secs => $1::float8))
    OR (n.draining AND n.drain_deadline <= now()))`

// liveStates are the states in which a task holds a place on a node.
var liveStates = []string{string(queue.Scheduled), string(queue.Starting), string(queue.Running)}

// NodesToEvacuate lists the nodes that hold live tasks which must move:
// see EvacuateNode.
func (s *Store) NodesToEvacuate(ctx context.Context, timeout time.Duration) ([]uuid.UUID, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "finding nodes to evacuate", scanOne[uuid.UUID],
		`SELECT n.id FROM nodes n WHERE `+evacuateCond+`
  AND EXISTS (SELECT 1 FROM tasks t WHERE t.node_id = n.id AND t.state = ANY($2::text[]))
ORDER BY n.id`, timeout.Seconds(), liveStates)
}

// EvacuateNode moves every live task of node back to pending, to be placed
// on another node, if the node still must give them up (it is down, its
// engine has not answered for longer than timeout, or its drain deadline has
// passed — checked again under lock, so a node that came back meanwhile
// keeps its tasks). It is one transaction; every task gets its event with
// the reason, e.g. "lost: node n1 is down (no heartbeat for 3.2s)", and its
// reservation is released. It returns how many tasks moved and why.
// Running it twice, or from two replicas at once, moves each task once.
func (s *Store) EvacuateNode(ctx context.Context, node uuid.UUID, timeout time.Duration) (int, string, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var moved int
	var why string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		moved, why = 0, ""
		// Tasks before the node, the order every transition locks in.
		rows, err := tx.Query(ctx, `SELECT id FROM tasks WHERE node_id = $1 AND state = ANY($2::text[])
ORDER BY id FOR UPDATE`, node, liveStates)
		if err != nil {
			return translate(err, "locking the node's tasks")
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return translate(err, "locking the node's tasks")
		}
		// Then the node: wait for a pass that is placing tasks on it.
		if _, err := tx.Exec(ctx, nodeLockSQL, node); err != nil {
			return translate(err, "locking the node")
		}
		var name, state, healthErr string
		var must bool
		var silent float64
		err = tx.QueryRow(ctx, `SELECT n.name, n.state, n.health_error, `+evacuateCond+`,
    extract(epoch FROM now() - n.last_heartbeat)::float8
FROM nodes n WHERE n.id = $2 FOR UPDATE`, timeout.Seconds(), node).Scan(&name, &state, &healthErr, &must, &silent)
		if err != nil {
			return translate(err, fmt.Sprintf("node %s", node))
		}
		if !must || len(ids) == 0 {
			return nil
		}
		switch queue.NodeState(state) {
		case queue.NodeDown:
			why = fmt.Sprintf("lost: node %s is down (no heartbeat for %s)", name, time.Duration(silent*float64(time.Second)).Round(100*time.Millisecond))
		case queue.NodeUnhealthy:
			why = fmt.Sprintf("lost: node %s is unhealthy: %s", name, healthErr)
		default:
			why = fmt.Sprintf("moved: node %s is draining and its deadline passed", name)
		}
		moved, err = moveToPending(ctx, tx, node, ids, liveStates, why)
		return err
	})
	if err != nil {
		return 0, "", fmt.Errorf("evacuating node %s: %w", node, err)
	}
	return moved, why, nil
}

// moveSQL sends tasks of one node back to pending in one statement, with
// their events; the trigger on tasks releases their reservations and host
// ports (00011_agent_isolation.sql). Only tasks still on that node in one of
// the given states move. A task whose user asked it to stop ends stopped
// instead: no pass would place it again.
const moveSQL = `
WITH old AS (
    SELECT id, state, attempt, CASE WHEN desired_state = 'stopped' THEN 'stopped' ELSE 'pending' END AS target
    FROM tasks
    WHERE id = ANY($1::uuid[]) AND node_id = $2 AND state = ANY($3::text[])
), upd AS (
    UPDATE tasks t SET state = old.target,
        node_id = CASE WHEN old.target = 'pending' THEN NULL ELSE t.node_id END,
        container_id = CASE WHEN old.target = 'pending' THEN '' ELSE t.container_id END,
        reason = CASE WHEN old.target = 'pending' THEN $4 ELSE '' END,
        finished_at = CASE WHEN old.target = 'stopped' THEN now() ELSE t.finished_at END,
        not_before = NULL, health = CASE WHEN old.target = 'pending' THEN '' ELSE t.health END,
        health_at = CASE WHEN old.target = 'pending' AND t.health <> '' THEN now() ELSE t.health_at END,
        updated_at = now()
    FROM old WHERE t.id = old.id
    RETURNING t.id, old.state AS from_state, old.target, t.attempt
), ev AS (
    INSERT INTO task_events (task_id, from_state, to_state, attempt, node_id, reason)
    SELECT id, from_state, target, attempt, $2,
           CASE WHEN target = 'pending' THEN $4 ELSE 'stopped on request, instead of: ' || $4 END
    FROM upd
)
SELECT count(*) FROM upd`

// moveToPending runs moveSQL in tx and wakes the schedulers and the node's
// agent (which must let go of the tasks) when anything moved.
func moveToPending(ctx context.Context, tx pgx.Tx, node uuid.UUID, ids []uuid.UUID, states []string, reason string) (int, error) {
	for _, st := range states {
		if !queue.CanTransition(queue.State(st), queue.Pending) {
			return 0, fmt.Errorf("moving tasks to pending: %w: %s → pending", queue.ErrInvalidTransition, st)
		}
	}
	var n int
	if err := tx.QueryRow(ctx, moveSQL, ids, node, states, reason).Scan(&n); err != nil {
		return 0, translate(err, "moving tasks to pending")
	}
	if n > 0 {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, ''), orch_wake_node($2, 'moved')`, ChannelPending, node); err != nil {
			return 0, translate(err, "notifying")
		}
	}
	return n, nil
}
