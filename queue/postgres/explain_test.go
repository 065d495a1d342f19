package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// seedScale fills the database the way a busy cluster looks: 1,000 nodes,
// 100,000 tasks of which most are history, some pending and some live.
func seedScale(t *testing.T, s *Store) (node uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	_, err := s.pool.Exec(ctx, `
INSERT INTO nodes (id, name, cpu_millis, memory_bytes, disk_bytes)
SELECT gen_random_uuid(), 'node-' || i, 64000, 256 << 30, 1 << 40 FROM generate_series(1, 1000) i;
WITH n AS (SELECT array_agg(id ORDER BY id) AS ids FROM nodes)
INSERT INTO tasks (id, name, image, state, node_id, attempt, created_at, finished_at)
SELECT gen_random_uuid(), 'task-' || i, 'alpine',
       CASE WHEN i % 20 = 0 THEN 'pending' WHEN i % 20 = 1 THEN 'running' ELSE 'completed' END,
       CASE WHEN i % 20 = 0 THEN NULL ELSE n.ids[1 + i % 1000] END,
       1, now() - make_interval(secs => 100000 - i), now()
FROM generate_series(1, 100000) i, n;
INSERT INTO task_events (task_id, to_state, attempt)
SELECT id, state, attempt FROM tasks;
ANALYZE nodes; ANALYZE tasks; ANALYZE task_events;`)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT node_id FROM tasks WHERE state = 'running' LIMIT 1`).Scan(&node); err != nil {
		t.Fatal(err)
	}
	return node
}

// seqScans returns the tables a plan reads in full.
func seqScans(plan any) []string {
	var out []string
	switch p := plan.(type) {
	case map[string]any:
		if p["Node Type"] == "Seq Scan" {
			out = append(out, fmt.Sprint(p["Relation Name"]))
		}
		for _, v := range p {
			out = append(out, seqScans(v)...)
		}
	case []any:
		for _, v := range p {
			out = append(out, seqScans(v)...)
		}
	}
	return out
}

func TestHotQueries_UseIndexesAt100kTasks(t *testing.T) {
	s, ctx := newStore(t)
	node := seedScale(t, s)
	var someTask uuid.UUID
	if err := s.pool.QueryRow(ctx, `SELECT id FROM tasks WHERE node_id = $1 LIMIT 1`, node).Scan(&someTask); err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]struct {
		sql  string
		args []any
	}{
		"lock pending batch": {lockPendingSQL, []any{500}},
		"agent claim":        {claimSQL, []any{node, 8}},
		"left after a claim": {leftSQL, []any{node}},
		"node tasks":         {`SELECT ` + taskCols + ` FROM tasks t WHERE t.node_id = $1 AND t.state IN ('starting', 'running')`, []any{node}},
		"stop requests":      {`SELECT ` + taskCols + ` FROM tasks t WHERE t.node_id = $1 AND t.state IN ('starting', 'running') AND t.desired_state = 'stopped'`, []any{node}},
		"transition":         {transitionSQL, []any{someTask, "failed", []string{"running"}, nil, nil, nil, 1, nil, "x", 0, nil, nil}},
		"get task":           {`SELECT ` + taskCols + `, COALESCE(n.name, '') FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id WHERE t.id = $1`, []any{someTask}},
		"task events":        {`SELECT id FROM task_events WHERE task_id = $1 ORDER BY id`, []any{someTask}},
		"list newest tasks":  {`SELECT ` + taskCols + ` FROM tasks t ORDER BY t.created_at DESC, t.id LIMIT 100`, nil},
		"live task count":    {liveAtMostSQL, []any{1000}},
		// A name, given or generated (sql/00055).
		"tasks by name":           {byNameSQL, []any{"task-99999", 11}},
		"tasks by generated name": {byNameSQL, []any{"task-" + queue.ShortID(someTask), 11}},
		"live task of a name":     {liveNamedSQL, []any{"task-99999"}},
		// orch_beat's UPDATE (00016_beat.sql), whose plan EXPLAIN of the
		// function's call would not show.
		"heartbeat": {`UPDATE nodes n SET last_heartbeat = now(), state = $2::text, updated_at = now(),
    heartbeat_interval_ms = greatest($3::int, (SELECT hp.interval_ms FROM heartbeat_policy hp))
WHERE n.id = $1 RETURNING n.draining, n.heartbeat_interval_ms`, []any{node, "ready", 2000}},
	} {
		// EXPLAIN without ANALYZE: the plan is what matters, and the
		// statements that write must not write.
		rows, err := s.pool.Query(ctx, "EXPLAIN (FORMAT JSON) "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var raw []byte
		for rows.Next() {
			if err := rows.Scan(&raw); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		var plan any
		if err := json.Unmarshal(raw, &plan); err != nil {
			t.Fatal(err)
		}
		var big []string
		for _, rel := range seqScans(plan) {
			// A heartbeat is one node's row: with a thousand agents beating,
			// reading the whole table each time would add up.
			if rel == "tasks" || rel == "task_events" || (rel == "nodes" && name == "heartbeat") {
				big = append(big, rel)
			}
		}
		if len(big) > 0 {
			t.Errorf("%s scans %s in full:\n%s", name, strings.Join(big, ", "), raw)
		}
	}
}
