package postgres

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// TestReportViews_KnownScenario builds a small cluster's history with fixed
// times and checks every reporting view's figures.
func TestReportViews_KnownScenario(t *testing.T) {
	s, ctx := newStore(t)
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
	if _, err := s.RecordExit(ctx, lb, ExitReport{Code: 0}); err != nil {
		t.Fatal(err)
	}
	lc := runOn(t, s, c.ID, n2.ID)
	if _, err := s.RecordExit(ctx, lc, ExitReport{Code: 1}); err != nil {
		t.Fatal(err)
	}
	le := runOn(t, s, e.ID, n1.ID)
	if _, _, err := transition(ctx, s.pool, stateChange{TaskID: e.ID, To: queue.Pending, Lease: &le, Restart: true, Reason: "restart"}); err != nil {
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

// TestReportTaskFailures_ShowsWhyAndWhereTasksFailed: a task that exited
// with 3, one whose image could not be started (no exit code, the engine's
// error) and one that failed again after its one restart are there, with
// their node, reason and time; completed, running and restarting tasks are
// not.
func TestReportTaskFailures_ShowsWhyAndWhereTasksFailed(t *testing.T) {
	s, ctx := newStore(t)
	n1 := mustNode(t, s, "n1", queue.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30})
	n2 := mustNode(t, s, "n2", queue.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30})
	exit := func(l queue.Lease, r ExitReport) {
		t.Helper()
		if _, err := s.RecordExit(ctx, l, r); err != nil {
			t.Fatal(err)
		}
	}
	crash := running(t, s, n1.ID, queue.TaskSpec{Name: "crash", Image: "img/crash", RestartPolicy: queue.RestartNever})
	exit(crash, ExitReport{Code: 3})

	noImage := createSpec(t, s, queue.TaskSpec{Name: "noimage", Image: "nosuch/image:1", RestartPolicy: queue.RestartNever})
	if res := pass(t, s, placeOnly(noImage.ID, n2.ID)); res.Placed != 1 {
		t.Fatalf("placing: %+v", res)
	}
	claim, err := s.Claim(ctx, n2.ID, 10)
	if err != nil || len(claim.Tasks) != 1 {
		t.Fatalf("claim: %+v, %v", claim.Tasks, err)
	}
	const pullErr = "image nosuch/image:1: pull access denied, repository does not exist"
	exit(claim.Tasks[0].Lease(), ExitReport{StartFailed: true, Error: pullErr})

	flaky := running(t, s, n1.ID, queue.TaskSpec{Name: "flaky", Image: "img/flaky", RestartPolicy: queue.RestartOnFailure, MaxRestarts: 1})
	exit(flaky, ExitReport{Code: 1})
	exec(t, s, `UPDATE tasks SET not_before = NULL, queued_at = now() WHERE id = $1`, flaky.TaskID) // skip the backoff
	exit(runAgain(t, s, n2.ID, flaky.TaskID), ExitReport{Code: 2, Error: "killed: out of memory"})

	restarting := running(t, s, n1.ID, queue.TaskSpec{Name: "restarting", Image: "img/r", RestartPolicy: queue.RestartAlways})
	exit(restarting, ExitReport{Code: 1})
	done := running(t, s, n1.ID, queue.TaskSpec{Name: "done", Image: "img/ok", RestartPolicy: queue.RestartNever})
	exit(done, ExitReport{Code: 0})
	running(t, s, n2.ID, queue.TaskSpec{Name: "up", Image: "img/up"})

	rows, err := s.pool.Query(ctx, `SELECT task, image, coalesce(job, '-'), node, attempt, restarts, exit_code, error, reason, failed_at
FROM report_task_failures ORDER BY task`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var task, image, job, node, errText, reason string
		var attempt, restarts int
		var code *int
		var at time.Time
		if err := rows.Scan(&task, &image, &job, &node, &attempt, &restarts, &code, &errText, &reason, &at); err != nil {
			t.Fatal(err)
		}
		if time.Since(at) > time.Minute || time.Until(at) > time.Minute {
			t.Errorf("%s failed_at %v", task, at)
		}
		c := "NULL"
		if code != nil {
			c = fmt.Sprint(*code)
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|%s|%d|%d|%s|%s|%s", task, image, job, node, attempt, restarts, c, errText, reason))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"crash|img/crash|-|n1|1|0|3||exited with code 3",
		"flaky|img/flaky|-|n2|2|1|2|killed: out of memory|exited with code 2: killed: out of memory",
		"noimage|nosuch/image:1|-|n2|1|0|NULL|" + pullErr + "|" + pullErr,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("report_task_failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
