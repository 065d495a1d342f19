package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

// With a deep backlog the scheduling pass must still read only the batch it
// takes: the index has to give the pass's order, or every pending task is
// read and sorted on every pass (39 ms per pass of 500 at 20,000 pending,
// against under a millisecond).
func TestLockPending_DeepBacklogReadsOnlyTheBatch(t *testing.T) {
	s, _ := newStore(t)
	raw, plan := explainLockPending(t, s, `
INSERT INTO tasks (id, name, image, created_at)
SELECT gen_random_uuid(), 'task-' || i, 'alpine', now() - make_interval(secs => 30000 - i)
FROM generate_series(1, 30000) i;
ANALYZE tasks;`, "FORMAT JSON")
	if len(seqScans(plan)) > 0 || hasNode(plan, "Sort") || hasNode(plan, "Incremental Sort") {
		t.Errorf("taking 500 of 30,000 pending tasks reads or sorts them all:\n%s", raw)
	}
}

// explainLockPending fills the tasks table with seed and returns the plan
// of the scheduling pass's lock of 500 pending tasks, as EXPLAIN (options)
// gives it: the JSON, and parsed.
func explainLockPending(t *testing.T, s *Store, seed, options string) ([]byte, any) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, seed); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := s.pool.QueryRow(ctx, "EXPLAIN ("+options+") "+lockPendingSQL, 500).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var plan any
	if err := json.Unmarshal(raw, &plan); err != nil {
		t.Fatal(err)
	}
	return raw, plan
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

// Restarts waiting out their backoff join the queue where their wait ends,
// so a pass never wades through them: with 20,000 of them ahead of 10 tasks
// it may place, the pass's scan reads those 10 and stops.
func TestLockPending_RestartsInBackoffAreNotRead(t *testing.T) {
	s, ctx := newStore(t)
	// One through the real path: a crash whose restart waits a minute.
	n := mustNode(t, s, "n1", roomyNode)
	l := running(t, s, n.ID, queue.TaskSpec{RestartPolicy: queue.RestartAlways})
	if _, err := s.RecordExit(ctx, l, ExitReport{Code: 1, Backoff: queue.Backoff{Base: time.Minute, Max: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	var queued, notBefore time.Time
	if err := s.pool.QueryRow(ctx, `SELECT queued_at, not_before FROM tasks WHERE id = $1`, l.TaskID).Scan(&queued, &notBefore); err != nil {
		t.Fatal(err)
	}
	if !queued.Equal(notBefore) || time.Until(queued) < 50*time.Second {
		t.Fatalf("a restart in backoff is queued at %v, its wait ends at %v", queued, notBefore)
	}
	// 20,000 more like it, created before the 10 that may go now.
	raw, plan := explainLockPending(t, s, `
INSERT INTO tasks (id, name, image, created_at, queued_at, not_before, restarts)
SELECT gen_random_uuid(), 'waiting-' || i, 'alpine', now() - interval '1 hour', now() + interval '1 minute', now() + interval '1 minute', 1
FROM generate_series(1, 20000) i;
INSERT INTO tasks (id, name, image) SELECT gen_random_uuid(), 'ready-' || i, 'alpine' FROM generate_series(1, 10) i;
ANALYZE tasks;`, "ANALYZE, FORMAT JSON")
	if read := rowsRead(plan); read > 50 {
		t.Errorf("the pass read %d rows to take 10 it may place:\n%s", read, raw)
	}
}

// rowsRead adds up, over a plan's scans, the rows they returned and those
// they read and filtered out.
func rowsRead(plan any) int {
	total := 0
	switch p := plan.(type) {
	case map[string]any:
		if t, _ := p["Node Type"].(string); strings.Contains(t, "Scan") {
			for _, k := range []string{"Actual Rows", "Rows Removed by Filter"} {
				if v, ok := p[k].(float64); ok {
					total += int(v)
				}
			}
		}
		for _, v := range p {
			total += rowsRead(v)
		}
	case []any:
		for _, v := range p {
			total += rowsRead(v)
		}
	}
	return total
}
