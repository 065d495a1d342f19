package postgres

import (
	"context"
	"encoding/json"
	"testing"
)

// With a deep backlog the scheduling pass must still read only the batch it
// takes: the index has to give the pass's order, or every pending task is
// read and sorted on every pass (39 ms per pass of 500 at 20,000 pending,
// against under a millisecond).
func TestLockPending_DeepBacklogReadsOnlyTheBatch(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	_, err := s.pool.Exec(ctx, `
INSERT INTO tasks (id, name, image, created_at)
SELECT gen_random_uuid(), 'task-' || i, 'alpine', now() - make_interval(secs => 30000 - i)
FROM generate_series(1, 30000) i;
ANALYZE tasks;`)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := s.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+lockPendingSQL, 500).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var plan any
	if err := json.Unmarshal(raw, &plan); err != nil {
		t.Fatal(err)
	}
	if len(seqScans(plan)) > 0 || hasNode(plan, "Sort") || hasNode(plan, "Incremental Sort") {
		t.Errorf("taking 500 of 30,000 pending tasks reads or sorts them all:\n%s", raw)
	}
}

// hasNode reports whether a plan has a node of the given type.
func hasNode(plan any, nodeType string) bool {
	switch p := plan.(type) {
	case map[string]any:
		if p["Node Type"] == nodeType {
			return true
		}
		for _, v := range p {
			if hasNode(v, nodeType) {
				return true
			}
		}
	case []any:
		for _, v := range p {
			if hasNode(v, nodeType) {
				return true
			}
		}
	}
	return false
}
