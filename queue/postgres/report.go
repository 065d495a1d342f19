package postgres

import (
	"context"

	"github.com/orchd/orch/queue"
)

// taskCountsSQL counts tasks by state without reading the whole table:
// pending and live tasks on their partial indexes, finished ones from
// task_counts plus those that finished since it was brought up to date
// (see 00013_retention.sql).
const taskCountsSQL = `
SELECT 'pending', count(*) FROM tasks WHERE state = 'pending'
UNION ALL
SELECT state, count(*) FROM tasks WHERE state IN ('scheduled', 'starting', 'running') GROUP BY state
UNION ALL
SELECT state, count(*) FROM tasks
WHERE state IN ('completed', 'failed', 'stopped') AND finished_at > (SELECT counted_until FROM task_counts)
GROUP BY state
UNION ALL
SELECT s.state, s.n FROM task_counts c,
    LATERAL (VALUES ('completed', c.completed), ('failed', c.failed), ('stopped', c.stopped)) s(state, n)`

// TaskCounts returns how many tasks are in each state; every state is
// present, with 0 when no task is in it. It stays fast however many
// finished tasks the database holds.
func (s *Store) TaskCounts(ctx context.Context) (map[queue.State]int64, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	out := make(map[queue.State]int64, len(queue.AllStates))
	for _, st := range queue.AllStates {
		out[st] = 0
	}
	rows, err := s.pool.Query(ctx, taskCountsSQL)
	if err != nil {
		return nil, translate(err, "counting tasks")
	}
	defer rows.Close()
	for rows.Next() {
		var st queue.State
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, translate(err, "counting tasks")
		}
		out[st] += n
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "counting tasks")
	}
	return out, nil
}

// NodeCounts is how many nodes are in each liveness state, and how many of
// them are cordoned.
type NodeCounts struct {
	Ready, Down, Cordoned int64
}

// CountNodes counts the nodes by state.
func (s *Store) CountNodes(ctx context.Context) (NodeCounts, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var c NodeCounts
	err := s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'ready'), count(*) FILTER (WHERE state = 'down'),
    count(*) FILTER (WHERE cordoned) FROM nodes`).Scan(&c.Ready, &c.Down, &c.Cordoned)
	if err != nil {
		return NodeCounts{}, translate(err, "counting nodes")
	}
	return c, nil
}
