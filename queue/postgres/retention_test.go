package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// countRows counts the rows of table that belong to task.
func countRows(t *testing.T, s *Store, table string, task uuid.UUID) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE task_id = $1`, task).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// finishedTask runs a task on node to its end, with a log line and a usage
// sample, and dates its end ago.
func finishedTask(t *testing.T, s *Store, node uuid.UUID, code int, ago time.Duration) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	l := running(t, s, node, queue.TaskSpec{})
	if _, err := s.AppendLogs(ctx, l, []queue.LogLine{{Attempt: l.Attempt, At: time.Now(), Stream: queue.Stdout, Text: "bye"}}, queue.DefaultLogLimits); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportTaskUsage(ctx, node, []queue.TaskUsage{{TaskID: l.TaskID, Attempt: l.Attempt, CPUPercent: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordExit(ctx, l, ExitReport{Code: code}); err != nil {
		t.Fatal(err)
	}
	exec(t, s, `UPDATE tasks SET finished_at = now() - make_interval(secs => $2) WHERE id = $1`, l.TaskID, ago.Seconds())
	return l.TaskID
}

func TestStore_ExpireTasks_DeletesOnlyFinishedTasksPastTheRetention(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	old := []uuid.UUID{finishedTask(t, s, n.ID, 0, 48*time.Hour), finishedTask(t, s, n.ID, 1, 30*time.Hour)}
	recent := finishedTask(t, s, n.ID, 0, time.Hour)
	live := running(t, s, n.ID, queue.TaskSpec{})
	pendingOld := mustTask(t, s, queue.Resources{CPUMillis: 1 << 40}) // fits nowhere, waits
	exec(t, s, `UPDATE tasks SET created_at = now() - interval '40 hours' WHERE id = $1`, pendingOld.ID)

	// Batches of one, until nothing is left.
	total := 0
	for {
		k, err := s.ExpireTasks(ctx, 24*time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		total += k
		if k < 1 {
			break
		}
	}
	if total != 2 {
		t.Errorf("expired %d tasks, want 2", total)
	}
	for _, id := range old {
		if _, err := s.GetTask(ctx, id); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("expired task %s: %v", id, err)
		}
		for _, table := range []string{"task_events", "task_logs", "task_log_totals", "task_usage", "task_stats"} {
			if c := countRows(t, s, table, id); c != 0 {
				t.Errorf("%s of an expired task: %d rows left", table, c)
			}
		}
	}
	for _, id := range []uuid.UUID{recent, live.TaskID, pendingOld.ID} {
		if _, err := s.GetTask(ctx, id); err != nil {
			t.Errorf("task %s that must stay: %v", id, err)
		}
	}
	if c := countRows(t, s, "task_logs", recent); c != 1 {
		t.Errorf("logs of a recent task: %d lines, want 1", c)
	}
}

func TestStore_PurgeTask_OnlyAFinishedOne(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	done := finishedTask(t, s, n.ID, 0, 0)
	live := running(t, s, n.ID, queue.TaskSpec{})
	if err := s.PurgeTask(ctx, live.TaskID); !errors.Is(err, queue.ErrConflict) {
		t.Errorf("purging a running task: %v, want a conflict", err)
	}
	if err := s.PurgeTask(ctx, done); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTask(ctx, done); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("purged task: %v", err)
	}
	if c := countRows(t, s, "task_events", done); c != 0 {
		t.Errorf("events of a purged task: %d", c)
	}
	if err := s.PurgeTask(ctx, uuid.New()); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("purging an unknown task: %v", err)
	}
}

// The counts /metrics serves stay exact through refreshes, expiries and
// purges, whatever their order, without counting the whole table.
func TestStore_TaskCounts_ExactThroughRefreshAndExpiry(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	check := func(when string, want map[queue.State]int64) {
		t.Helper()
		got, err := s.TaskCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range queue.AllStates {
			if got[st] != want[st] {
				t.Errorf("%s: %s = %d, want %d", when, st, got[st], want[st])
			}
		}
	}
	a := finishedTask(t, s, n.ID, 0, 50*time.Hour)
	finishedTask(t, s, n.ID, 1, 40*time.Hour)
	finishedTask(t, s, n.ID, 0, 0)
	running(t, s, n.ID, queue.TaskSpec{})
	check("before any refresh", map[queue.State]int64{queue.Completed: 2, queue.Failed: 1, queue.Running: 1})
	if ok, err := s.RefreshTaskCounts(ctx, 0); err != nil || !ok {
		t.Fatalf("refresh: %v %v", ok, err)
	}
	check("after a refresh", map[queue.State]int64{queue.Completed: 2, queue.Failed: 1, queue.Running: 1})
	if ok, _ := s.RefreshTaskCounts(ctx, time.Hour); ok {
		t.Error("a second refresh within its interval ran")
	}
	if k, err := s.ExpireTasks(ctx, 24*time.Hour, 10); err != nil || k != 2 {
		t.Fatalf("expire: %d, %v", k, err)
	}
	check("after the expiry", map[queue.State]int64{queue.Completed: 1, queue.Running: 1})
	if err := s.PurgeTask(ctx, a); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("purging an expired task: %v", err)
	}
	done := finishedTask(t, s, n.ID, 0, 0)
	check("a task finished since", map[queue.State]int64{queue.Completed: 2, queue.Running: 1})
	if err := s.PurgeTask(ctx, done); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.RefreshTaskCounts(ctx, 0); err != nil || !ok {
		t.Fatalf("refresh: %v %v", ok, err)
	}
	check("after a purge and a refresh", map[queue.State]int64{queue.Completed: 1, queue.Running: 1})
}
