package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// placeOnly returns a plan that puts task on node and leaves every other
// task pending.
func placeOnly(task, node uuid.UUID) PlanFunc {
	return func(tasks []queue.Task, _ queue.Snapshot) queue.Plan {
		p := queue.Plan{Unplaced: map[uuid.UUID]string{}}
		for _, t := range tasks {
			if t.ID == task {
				p.Placements = append(p.Placements, queue.Placement{TaskID: t.ID, NodeID: node})
			} else {
				p.Unplaced[t.ID] = "held back by the test"
			}
		}
		return p
	}
}

// runOn places task on node, claims it and marks it running; it returns the lease.
func runOn(t *testing.T, s *Store, task, node uuid.UUID) queue.Lease {
	t.Helper()
	ctx := context.Background()
	if res := pass(t, s, placeOnly(task, node)); res.Placed != 1 {
		t.Fatalf("placing %s: %+v", task, res)
	}
	claim, err := s.Claim(ctx, node, 10)
	if err != nil || len(claim.Tasks) != 1 || claim.Tasks[0].ID != task {
		t.Fatalf("claim = %+v, %v", claim.Tasks, err)
	}
	l := claim.Tasks[0].Lease()
	if err := s.MarkRunning(ctx, l, "c-"+task.String()[:8]); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestStore_ReportUsage_LatestOnNodeAndHistoryWithinRetention(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	s.SetStatsRetention(time.Hour)

	// A sample from before the retention, as if written two hours ago.
	if _, err := s.pool.Exec(ctx, `INSERT INTO node_stats (node_id, at, cpu_percent, load1, memory_used_bytes,
memory_total_bytes, disk_used_bytes, disk_total_bytes) VALUES ($1, now() - interval '2 hours', 1, 1, 1, 1, 1, 1)`, node.ID); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		u := queue.Usage{CPUPercent: float64(10 * i), Load1: 0.5 * float64(i), MemoryUsedBytes: int64(i) << 30,
			MemoryTotalBytes: 8 << 30, DiskUsedBytes: int64(i) << 20, DiskTotalBytes: 100 << 30}
		if err := s.ReportUsage(ctx, node.ID, u); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.GetNode(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if n.Usage.CPUPercent != 30 || n.Usage.Load1 != 1.5 || n.Usage.MemoryUsedBytes != 3<<30 || n.Usage.DiskUsedBytes != 3<<20 || n.Usage.At == nil {
		t.Errorf("node usage = %+v, want the third sample", n.Usage)
	}
	hist, err := s.NodeStats(ctx, node.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("history has %d rows, want the 3 recent ones (the old one pruned): %+v", len(hist), hist)
	}
	if h := hist[0]; h.CPUPercent != 30 || h.MemoryTotalBytes != 8<<30 || h.DiskTotalBytes != 100<<30 {
		t.Errorf("newest sample = %+v", h)
	}
	if hist[2].CPUPercent != 10 {
		t.Errorf("oldest kept sample = %+v, want cpu 10", hist[2])
	}
	if err := s.ReportUsage(ctx, uuid.New(), queue.Usage{}); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("usage of an unknown node: %v, want ErrNotFound", err)
	}
}

func TestStore_ReportTaskUsage_OnlyForTheRunningLease(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	n1 := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	n2 := mustNode(t, s, "n2", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	task := mustTask(t, s, queue.Resources{CPUMillis: 500})
	l := runOn(t, s, task.ID, n1.ID)

	good := queue.TaskUsage{TaskID: task.ID, Attempt: l.Attempt, CPUPercent: 42.5, MemoryUsedBytes: 64 << 20, MemoryLimitBytes: 128 << 20}
	staleAttempt := good
	staleAttempt.Attempt++
	staleAttempt.CPUPercent = 99
	n, err := s.ReportTaskUsage(ctx, n1.ID, []queue.TaskUsage{good, {TaskID: uuid.New(), Attempt: 1}})
	if err != nil || n != 1 {
		t.Fatalf("report = %d, %v; want 1 sample counted", n, err)
	}
	if n, err := s.ReportTaskUsage(ctx, n2.ID, []queue.TaskUsage{good}); err != nil || n != 0 {
		t.Errorf("another node's report counted %d, %v", n, err)
	}
	if n, err := s.ReportTaskUsage(ctx, n1.ID, []queue.TaskUsage{staleAttempt}); err != nil || n != 0 {
		t.Errorf("a stale attempt's report counted %d, %v", n, err)
	}
	u, err := s.TaskUsage(ctx, task.ID)
	if err != nil || u == nil || u.CPUPercent != 42.5 || u.MemoryUsedBytes != 64<<20 || u.MemoryLimitBytes != 128<<20 {
		t.Fatalf("latest usage = %+v, %v", u, err)
	}
	hist, err := s.TaskStats(ctx, task.ID, 10)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	if _, err := s.MarkExited(ctx, l, 0, "", false); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.ReportTaskUsage(ctx, n1.ID, []queue.TaskUsage{good}); n != 0 {
		t.Errorf("a report after the task ended counted")
	}
}

func logLines(stream queue.LogStream, from, to int, at time.Time) []queue.LogLine {
	var out []queue.LogLine
	for i := from; i <= to; i++ {
		out = append(out, queue.LogLine{At: at.Add(time.Duration(i) * time.Millisecond), Stream: stream, Text: fmt.Sprintf("line %d", i)})
	}
	return out
}

func texts(lines []queue.LogLine) string {
	var b []string
	for _, l := range lines {
		b = append(b, l.Text)
	}
	return strings.Join(b, ",")
}

func TestStore_AppendLogs_KeepsOrderAndTheCapDropsTheOldest(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	task := mustTask(t, s, queue.Resources{CPUMillis: 500})
	l := runOn(t, s, task.ID, node.ID)
	limits := queue.LogLimits{MaxLines: 10, MaxBytes: 1 << 20}
	t0 := time.Now()

	res, err := s.AppendLogs(ctx, l, append(logLines(queue.Stdout, 1, 4, t0), logLines(queue.Stderr, 5, 6, t0)...), limits)
	if err != nil || res.Stored != 6 || res.Dropped != 0 {
		t.Fatalf("append = %+v, %v", res, err)
	}
	page, err := s.ReadLogs(ctx, task.ID, LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(page.Lines); got != "line 1,line 2,line 3,line 4,line 5,line 6" {
		t.Errorf("lines = %s", got)
	}
	if page.Lines[4].Stream != queue.Stderr || page.Lines[0].Stream != queue.Stdout || page.Lines[0].Attempt != l.Attempt {
		t.Errorf("streams/attempt wrong: %+v", page.Lines)
	}
	if page.State != queue.Running || page.DroppedLines != 0 {
		t.Errorf("page state %s dropped %d", page.State, page.DroppedLines)
	}

	// 6 + 7 = 13 lines: the 3 oldest go.
	if res, err := s.AppendLogs(ctx, l, logLines(queue.Stdout, 7, 13, t0), limits); err != nil || res.Dropped != 3 {
		t.Fatalf("second append = %+v, %v; want 3 dropped", res, err)
	}
	// A batch bigger than the cap by itself keeps its newest lines.
	if res, err := s.AppendLogs(ctx, l, logLines(queue.Stdout, 14, 30, t0), limits); err != nil || res.Stored != 10 || res.Dropped != 17 {
		t.Fatalf("third append = %+v, %v; want 10 stored, 17 dropped", res, err)
	}
	page, _ = s.ReadLogs(ctx, task.ID, LogQuery{})
	if got := texts(page.Lines); got != "line 21,line 22,line 23,line 24,line 25,line 26,line 27,line 28,line 29,line 30" {
		t.Errorf("after the cap: %s", got)
	}
	if page.DroppedLines != 20 {
		t.Errorf("dropped = %d, want 20", page.DroppedLines)
	}
	tail, _ := s.ReadLogs(ctx, task.ID, LogQuery{Tail: 3})
	if got := texts(tail.Lines); got != "line 28,line 29,line 30" {
		t.Errorf("tail 3 = %s", got)
	}
	after, _ := s.ReadLogs(ctx, task.ID, LogQuery{After: tail.Lines[0].ID})
	if got := texts(after.Lines); got != "line 29,line 30" || after.Next != tail.Next {
		t.Errorf("after = %s next %d", got, after.Next)
	}
	var kept, keptBytes int64
	if err := s.pool.QueryRow(ctx, `SELECT lines, bytes FROM task_log_totals WHERE task_id = $1`, task.ID).Scan(&kept, &keptBytes); err != nil {
		t.Fatal(err)
	}
	if kept != 10 || keptBytes != 70 { // "line NN" is 7 bytes
		t.Errorf("totals say %d lines, %d bytes; want 10, 70", kept, keptBytes)
	}

	// The byte cap: 3 lines of 40 bytes fit under 100 bytes only 2 at a time.
	task2 := mustTask(t, s, queue.Resources{CPUMillis: 500})
	l2 := runOn(t, s, task2.ID, node.ID)
	big := []queue.LogLine{
		{At: t0, Text: strings.Repeat("a", 40)}, {At: t0, Text: strings.Repeat("b", 40)}, {At: t0, Text: strings.Repeat("c", 40)},
	}
	bytesCap := queue.LogLimits{MaxLines: 100, MaxBytes: 100}
	for _, ln := range big {
		if _, err := s.AppendLogs(ctx, l2, []queue.LogLine{ln}, bytesCap); err != nil {
			t.Fatal(err)
		}
	}
	p2, _ := s.ReadLogs(ctx, task2.ID, LogQuery{})
	if len(p2.Lines) != 2 || p2.Lines[0].Text[0] != 'b' || p2.DroppedLines != 1 || p2.DroppedBytes != 40 {
		t.Errorf("byte cap kept %q, dropped %d lines %d bytes", texts(p2.Lines), p2.DroppedLines, p2.DroppedBytes)
	}
}

func TestStore_AppendLogs_FencedByLease(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	n1 := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	n2 := mustNode(t, s, "n2", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	task := mustTask(t, s, queue.Resources{CPUMillis: 500})
	l := runOn(t, s, task.ID, n1.ID)
	t0 := time.Now()

	other := l
	other.NodeID = n2.ID
	if _, err := s.AppendLogs(ctx, other, logLines(queue.Stdout, 1, 1, t0), queue.LogLimits{}); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("another node's lines: %v, want ErrNotOwner", err)
	}
	// The attempt ends and the task goes back to pending for a restart: the
	// attempt's last lines are still its own.
	if _, err := transition(ctx, s.pool, stateChange{TaskID: task.ID, To: queue.Pending, Lease: &l, Restart: true, Reason: "restart"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLogs(ctx, l, logLines(queue.Stdout, 1, 2, t0), queue.LogLimits{}); err != nil {
		t.Errorf("last lines of the ended attempt: %v", err)
	}
	if _, err := s.AppendLogs(ctx, other, logLines(queue.Stdout, 3, 3, t0), queue.LogLimits{}); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("another node's lines while pending: %v, want ErrNotOwner", err)
	}
	// Placed again on n2: the old attempt is fenced off, the new one writes.
	l2 := runOn(t, s, task.ID, n2.ID)
	if _, err := s.AppendLogs(ctx, l, logLines(queue.Stdout, 4, 4, t0), queue.LogLimits{}); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("superseded attempt: %v, want ErrNotOwner", err)
	}
	if _, err := s.AppendLogs(ctx, l2, logLines(queue.Stderr, 5, 5, t0), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	page, _ := s.ReadLogs(ctx, task.ID, LogQuery{})
	if got := texts(page.Lines); got != "line 1,line 2,line 5" || page.Lines[2].Attempt != l2.Attempt {
		t.Errorf("lines = %s (%+v)", got, page.Lines)
	}
	if _, err := s.ReadLogs(ctx, uuid.New(), LogQuery{}); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("logs of an unknown task: %v, want ErrNotFound", err)
	}
	if _, err := s.AppendLogs(ctx, queue.Lease{TaskID: uuid.New(), NodeID: n1.ID, Attempt: 1}, logLines(queue.Stdout, 1, 1, t0), queue.LogLimits{}); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("lines of an unknown task: %v, want ErrNotFound", err)
	}
}

func TestStore_AppendLogs_StoresHostileBytesAndResumesFromPosition(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	task := mustTask(t, s, queue.Resources{CPUMillis: 500})
	l := runOn(t, s, task.ID, node.ID)
	if at, err := s.LogPosition(ctx, l); err != nil || !at.IsZero() {
		t.Fatalf("position before anything shipped = %v, %v", at, err)
	}
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	hostile := []queue.LogLine{
		{At: t0, Text: "nul\x00byte"}, {At: t0.Add(time.Microsecond), Text: "bad \xff\xfe utf8"},
		{At: t0.Add(2 * time.Microsecond), Text: "'; DROP TABLE task_logs; --"},
		{At: t0.Add(3 * time.Microsecond), Text: strings.Repeat("x", queue.MaxLogLineBytes+100)},
	}
	if _, err := s.AppendLogs(ctx, l, hostile, queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	page, err := s.ReadLogs(ctx, task.ID, LogQuery{})
	if err != nil || len(page.Lines) != 4 {
		t.Fatalf("page = %+v, %v", page, err)
	}
	if page.Lines[0].Text != "nulbyte" || page.Lines[1].Text != "bad \uFFFD utf8" ||
		page.Lines[2].Text != "'; DROP TABLE task_logs; --" || len(page.Lines[3].Text) != queue.MaxLogLineBytes {
		t.Errorf("stored %q %q %q len %d", page.Lines[0].Text, page.Lines[1].Text, page.Lines[2].Text, len(page.Lines[3].Text))
	}
	at, err := s.LogPosition(ctx, l)
	if err != nil || !at.Equal(t0.Add(3*time.Microsecond)) {
		t.Errorf("position = %v, %v; want the last line's time", at, err)
	}
	next := l
	next.Attempt++
	if at, _ := s.LogPosition(ctx, next); !at.IsZero() {
		t.Errorf("another attempt's position = %v, want zero", at)
	}
}

// TestReportViews_KnownScenario builds a small cluster's history with fixed
// times and checks every reporting view's figures.
func TestReportViews_KnownScenario(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	db := s.pool
	n1 := mustNode(t, s, "n1", queue.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30})
	n2 := mustNode(t, s, "n2", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 50 << 30})
	create := func(image string, r queue.Resources) queue.Task {
		tk, err := s.CreateTask(ctx, uuid.Nil, queue.TaskSpec{Image: image, Resources: r, RestartPolicy: queue.RestartNever})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	a := create("img/a", queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30})
	b := create("img/a", queue.Resources{CPUMillis: 500, MemoryBytes: 512 << 20})
	c := create("img/b", queue.Resources{CPUMillis: 250})
	d := create("img/b", queue.Resources{CPUMillis: 8000}) // fits nowhere: stays pending
	e := create("img/b", queue.Resources{CPUMillis: 500, MemoryBytes: 256 << 20})

	la := runOn(t, s, a.ID, n1.ID)
	lb := runOn(t, s, b.ID, n1.ID)
	if _, err := s.MarkExited(ctx, lb, 0, "", false); err != nil {
		t.Fatal(err)
	}
	lc := runOn(t, s, c.ID, n2.ID)
	if _, err := s.MarkExited(ctx, lc, 1, "", false); err != nil {
		t.Fatal(err)
	}
	le := runOn(t, s, e.ID, n1.ID)
	if _, err := transition(ctx, s.pool, stateChange{TaskID: e.ID, To: queue.Pending, Lease: &le, Restart: true, Reason: "restart"}); err != nil {
		t.Fatal(err)
	}
	runOn(t, s, e.ID, n2.ID)
	_ = d

	// Fixed times: b waited 2 s and ran 10 s; a waited 1.5 s and has run for a minute.
	var now time.Time
	if err := db.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE tasks SET created_at = '2030-01-01 00:00:00+00', started_at = '2030-01-01 00:00:02+00',
finished_at = '2030-01-01 00:00:12+00' WHERE id = $1`, []any{b.ID}},
		{`UPDATE task_events SET at = '2030-01-01 00:00:02+00' WHERE task_id = $1 AND to_state = 'running'`, []any{b.ID}},
		// One clock for both rows of a (separate statements would each
		// have their own now()).
		{`UPDATE tasks SET created_at = $2::timestamptz - interval '61.5 seconds', started_at = $2::timestamptz - interval '60 seconds' WHERE id = $1`, []any{a.ID, now}},
		{`UPDATE task_events SET at = $2::timestamptz - interval '60 seconds' WHERE task_id = $1 AND to_state = 'running'`, []any{a.ID, now}},
	} {
		if _, err := db.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReportUsage(ctx, n1.ID, queue.Usage{CPUPercent: 12.5, Load1: 0.75, MemoryUsedBytes: 3 << 30, DiskUsedBytes: 20 << 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportTaskUsage(ctx, n1.ID, []queue.TaskUsage{{TaskID: a.ID, Attempt: la.Attempt, CPUPercent: 50, MemoryUsedBytes: 100 << 20, MemoryLimitBytes: 1 << 30}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLogs(ctx, la, logLines(queue.Stdout, 1, 5, time.Now()), queue.LogLimits{MaxLines: 3, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}

	rows := func(q string) string {
		t.Helper()
		r, err := db.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer r.Close()
		var out []string
		for r.Next() {
			vals, err := r.Values()
			if err != nil {
				t.Fatal(err)
			}
			var cols []string
			for _, v := range vals {
				cols = append(cols, fmt.Sprint(v))
			}
			out = append(out, strings.Join(cols, " "))
		}
		if err := r.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return strings.Join(out, "\n")
	}
	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", name, got, want)
		}
	}

	check("report_task_counts", rows(`SELECT node, state, tasks FROM report_task_counts ORDER BY node, state`),
		"- pending 1\nn1 completed 1\nn1 running 1\nn2 failed 1\nn2 running 1")
	check("report_node_capacity", rows(`SELECT node, state, cordoned, cpu_millis, reserved_cpu_millis, cpu_used_percent, load1,
memory_bytes, reserved_memory_bytes, memory_used_bytes, reserved_disk_bytes, disk_used_bytes, live_tasks FROM report_node_capacity ORDER BY node`),
		fmt.Sprintf("n1 ready false 4000 1000 12.5 0.75 %d %d %d 0 %d 1\nn2 ready false 2000 500 0 0 %d %d 0 0 0 1",
			int64(8<<30), int64(1<<30), int64(3<<30), int64(20<<30), int64(4<<30), int64(256<<20)))
	check("report_task_times (b)", rows(fmt.Sprintf(`SELECT node, state, attempt, restarts, queue_wait_seconds::text, run_seconds::text
FROM report_task_times WHERE task_id = '%s'`, b.ID)), "n1 completed 1 0 2.000 10.000")
	check("report_task_times (d)", rows(fmt.Sprintf(`SELECT state, queue_wait_seconds IS NULL, run_seconds IS NULL
FROM report_task_times WHERE task_id = '%s'`, d.ID)), "pending true true")
	check("report_task_times (e)", rows(fmt.Sprintf(`SELECT node, state, attempt, restarts FROM report_task_times WHERE task_id = '%s'`, e.ID)),
		"n2 running 2 1")
	var waitA, runA float64
	if err := db.QueryRow(ctx, `SELECT queue_wait_seconds::float8, run_seconds::float8 FROM report_task_times WHERE task_id = $1`, a.ID).Scan(&waitA, &runA); err != nil {
		t.Fatal(err)
	}
	if math.Abs(waitA-1.5) > 0.01 || runA < 60 || runA > 65 {
		t.Errorf("task a waited %.3f s (want 1.5) and ran %.3f s (want about 60)", waitA, runA)
	}
	check("report_image_restarts", rows(`SELECT image, tasks, restarts, tasks_restarted, running, completed, failed, stopped
FROM report_image_restarts ORDER BY image`), "img/a 2 0 0 1 1 0 0\nimg/b 3 1 1 1 0 1 0")
	check("report_task_usage", rows(`SELECT node, state, attempt, cpu_millis, cpu_percent, memory_bytes, memory_used_bytes, memory_limit_bytes
FROM report_task_usage`), fmt.Sprintf("n1 running 1 1000 50 %d %d %d", int64(1<<30), int64(100<<20), int64(1<<30)))
	check("report_task_logs", rows(`SELECT state, lines, bytes, dropped_lines, dropped_bytes FROM report_task_logs`), "running 3 18 2 12")

	counts, err := s.TaskCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[queue.State]int64{queue.Pending: 1, queue.Running: 2, queue.Completed: 1, queue.Failed: 1}
	for _, st := range queue.AllStates {
		if counts[st] != want[st] {
			t.Errorf("TaskCounts[%s] = %d, want %d", st, counts[st], want[st])
		}
	}
	if _, err := s.SetCordoned(ctx, "n2", true); err != nil {
		t.Fatal(err)
	}
	if nc, err := s.CountNodes(ctx); err != nil || nc != (NodeCounts{Ready: 2, Cordoned: 1}) {
		t.Errorf("CountNodes = %+v, %v", nc, err)
	}
}
