package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/scheduler"
)

func jobSpec(t *testing.T, yaml string) queue.JobSpec {
	t.Helper()
	s, err := queue.ParseJobSpec([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func submit(t *testing.T, s *Store, yaml string) (queue.Job, SubmitResult) {
	t.Helper()
	j, res, err := s.SubmitJob(context.Background(), JobSubmission{Spec: jobSpec(t, yaml)})
	if err != nil {
		t.Fatal(err)
	}
	return j, res
}

// reconcile runs one reconciliation of the job, as a coordinator would.
func reconcile(t *testing.T, s *Store, id uuid.UUID) ReconcileResult {
	t.Helper()
	res, err := s.ReconcileJob(context.Background(), id, scheduler.Reconcile, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func jobTasks(t *testing.T, s *Store, id uuid.UUID) []queue.Task {
	t.Helper()
	ts, err := s.JobTasks(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestJobs_SubmitMakesAVersionOnlyWhenTheSpecChanges(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j, res := submit(t, s, "name: web\ncount: 2\ntask: {image: 'busybox:1.36'}")
	if !res.Created || !res.NewVersion || j.Version != 1 || j.Status != queue.JobRunning {
		t.Fatalf("first run: %+v, %+v", j, res)
	}
	if j, res = submit(t, s, "name: web\ncount: 2\ntask: {image: 'busybox:1.36'}"); res.NewVersion || j.Version != 1 {
		t.Fatalf("unchanged spec: %+v, %+v", j, res)
	}
	if j, res = submit(t, s, "name: web\ncount: 2\ntask: {image: 'busybox:1.37'}"); !res.NewVersion || j.Version != 2 {
		t.Fatalf("changed spec: %+v, %+v", j, res)
	}
	if _, _, err := s.SubmitJob(ctx, JobSubmission{Spec: jobSpec(t, "name: web\ntype: batch\ntask: {image: busybox}")}); !errors.Is(err, queue.ErrConflict) {
		t.Fatalf("changing the type: %v, want a conflict", err)
	}
	vs, err := s.JobVersions(ctx, "web")
	if err != nil || len(vs) != 2 {
		t.Fatalf("versions %v, %v", vs, err)
	}
	if diff := strings.Join(vs[0].Diff, "\n"); vs[0].Version != 2 || !strings.Contains(diff, `task.image: "busybox:1.36" → "busybox:1.37"`) {
		t.Fatalf("newest version %d, diff:\n%s", vs[0].Version, diff)
	}
}

func TestJobs_ReconcileCreatesTasksAndScalesInPlace(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j, _ := submit(t, s, "name: web\ncount: 2\ntask: {image: busybox, resources: {cpu: 100m}}")
	if res := reconcile(t, s, j.ID); !res.Done || res.Created != 2 {
		t.Fatalf("reconcile: %+v", res)
	}
	ts := jobTasks(t, s, j.ID)
	if len(ts) != 2 || ts[0].Name != "web.0" || ts[1].Name != "web.1" || *ts[0].JobVersion != 1 || *ts[1].JobIndex != 1 ||
		ts[0].State != queue.Pending || ts[0].Resources.CPUMillis != 100 {
		t.Fatalf("tasks = %+v", ts)
	}
	if res := reconcile(t, s, j.ID); res.Done {
		t.Fatalf("reconciled again though nothing changed: %+v", res)
	}
	if _, err := s.ScaleJob(ctx, "web", 3); err != nil {
		t.Fatal(err)
	}
	res := reconcile(t, s, j.ID)
	if res.Created != 1 || len(res.Plan.InPlace) != 2 {
		t.Fatalf("scale: %+v", res.Plan)
	}
	for _, tk := range jobTasks(t, s, j.ID) {
		if *tk.JobVersion != 2 {
			t.Fatalf("task %s is at version %d after a scale, want 2 (in place)", tk.Name, *tk.JobVersion)
		}
	}
}

func TestJobs_ATaskThatStartsMakesItsJobDue(t *testing.T) {
	s, _ := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	j, _ := submit(t, s, "name: web\ncount: 1\ntask: {image: busybox}")
	reconcile(t, s, j.ID)
	if res := reconcile(t, s, j.ID); res.Done {
		t.Fatal("due without a change")
	}
	runOn(t, s, jobTasks(t, s, j.ID)[0].ID, n.ID)
	res := reconcile(t, s, j.ID)
	if !res.Done {
		t.Fatal("the task started running, and the job was not due")
	}
	if d := res.Plan.Deployments; len(d) != 1 || d[0].Placed != 1 || d[0].State != queue.DeploymentRunning {
		t.Fatalf("deployment %+v", d)
	}
}

func TestJobs_OneCoordinatorReconcilesAJobAtATime(t *testing.T) {
	url := newURL(t)
	s := openStore(t, url)
	j, _ := submit(t, s, "name: web\ncount: 1\ntask: {image: busybox}")
	tx, err := s.pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(context.Background(), `SELECT 1 FROM jobs WHERE id = $1 FOR NO KEY UPDATE`, j.ID); err != nil {
		t.Fatal(err)
	}
	if res := reconcile(t, openStore(t, url), j.ID); res.Done {
		t.Fatal("reconciled a job another transaction holds")
	}
}

// TestJobs_PeriodicTickLaunchesOnce has many replicas reconcile a
// periodic job at once: one launch per tick.
func TestJobs_PeriodicTickLaunchesOnce(t *testing.T) {
	url := newURL(t)
	s := openStore(t, url)
	j, _ := submit(t, s, "name: cron\ntype: periodic\nperiodic: {cron: '@every 1s'}\ntask: {image: busybox}")
	exec(t, s, `UPDATE jobs SET last_tick = date_trunc('second', now()) - interval '1 second' WHERE id = $1`, j.ID)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		r := openStore(t, url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 10; k++ {
				if _, err := r.ReconcileJob(context.Background(), j.ID, scheduler.Reconcile, nil); err != nil {
					t.Error(err)
				}
				exec(t, s, `UPDATE jobs SET eval_at = now() WHERE id = $1`, j.ID) // due again at once
			}
		}()
	}
	wg.Wait()
	var launches, children, ticks int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*), count(child_id), count(DISTINCT tick) FROM periodic_launches WHERE job_id = $1`, j.ID).
		Scan(&launches, &children, &ticks); err != nil {
		t.Fatal(err)
	}
	if launches != ticks || children != launches || launches < 1 || launches > 2 {
		t.Fatalf("%d launches, %d instances, %d ticks: want one instance per tick", launches, children, ticks)
	}
	kids, err := s.ListJobs(context.Background(), JobFilter{Parent: &j.ID})
	if err != nil || len(kids) != children || kids[0].Type != queue.JobBatch || !strings.HasPrefix(kids[0].Name, "cron.periodic-") {
		t.Fatalf("instances %+v, %v", kids, err)
	}
}

func TestJobs_StopPurgeDeletesEverythingOnceStopped(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	n := mustNode(t, s, "n1", roomyNode)
	j, _ := submit(t, s, "name: web\ncount: 2\ntask: {image: busybox}")
	reconcile(t, s, j.ID)
	ts := jobTasks(t, s, j.ID)
	lease := runOn(t, s, ts[0].ID, n.ID)
	if _, err := s.StopJob(ctx, "web", true); err != nil {
		t.Fatal(err)
	}
	if res := reconcile(t, s, j.ID); res.Stopped != 2 || res.Plan.Delete {
		t.Fatalf("stop: %+v", res.Plan)
	}
	if tk := getTask(t, s, ts[1].ID); tk.State != queue.Stopped {
		t.Fatalf("the pending task is %s, want stopped at once", tk.State)
	}
	if _, err := s.RecordExit(ctx, lease, ExitReport{Stopped: true}); err != nil {
		t.Fatal(err)
	}
	if res := reconcile(t, s, j.ID); !res.Plan.Delete {
		t.Fatalf("nothing runs, and the job is not deleted: %+v", res.Plan)
	}
	if _, err := s.GetJob(ctx, "web"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("job after purge: %v", err)
	}
	for _, tk := range ts {
		if _, err := s.GetTask(ctx, tk.ID); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("task %s after purge: %v", tk.Name, err)
		}
	}
}

func TestJobs_AgentRolesSeeNoJobTables(t *testing.T) {
	s, _ := newStore(t)
	mustNode(t, s, "n1", roomyNode)
	submit(t, s, "name: web\ntask: {image: busybox}")
	agent := agentStore(t, s, "n1")
	for _, table := range []string{"jobs", "job_versions", "deployments", "periodic_launches", "job_changes", "report_job_endpoints"} {
		_, err := agent.pool.Exec(context.Background(), fmt.Sprintf("SELECT * FROM %s", table))
		if !forbidden(err) {
			t.Errorf("an agent read %s: %v", table, err)
		}
	}
}

// TestJobs_RetentionDeletesFinishedJobTasks: a job's finished tasks go
// with the task retention, like any task.
func TestJobs_RetentionDeletesFinishedJobTasks(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j, _ := submit(t, s, "name: web\ntask: {image: busybox}")
	reconcile(t, s, j.ID)
	tk := jobTasks(t, s, j.ID)[0]
	if _, err := s.RequestStop(ctx, tk.ID, "test"); err != nil {
		t.Fatal(err)
	}
	exec(t, s, `UPDATE tasks SET finished_at = now() - interval '2 hours' WHERE id = $1`, tk.ID)
	if n, err := s.ExpireTasks(ctx, time.Hour, 100); err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
}

// TestJobs_ATaskChangeNotifiesOnlyWhenItMakesItsJobDue listens on
// ChannelJobs: a job's first task change since its last reconciliation
// notifies; a second change while the job is due already does not (a
// marker sent after it arrives first: notifications come in commit
// order); after the next reconciliation a change (of health) notifies
// again. A user's
// change (a scale) notifies too.
func TestJobs_ATaskChangeNotifiesOnlyWhenItMakesItsJobDue(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	const marker = "orch_test_marker"
	heard := make(chan string, 64)
	lctx, unlisten := context.WithCancel(ctx)
	defer unlisten()
	go s.Listen(lctx, []string{ChannelJobs, marker}, func(n Notification) { heard <- n.Channel })
	if ch := <-heard; ch != "" {
		t.Fatalf("first %q, want the connection", ch)
	}
	next := func(what string) string {
		t.Helper()
		select {
		case ch := <-heard:
			return ch
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: nothing heard in 30 s", what)
			return ""
		}
	}
	j, _ := submit(t, s, "name: web\ncount: 2\ntask: {image: busybox}")
	if ch := next("job run"); ch != ChannelJobs {
		t.Fatalf("job run: heard %q, want %s", ch, ChannelJobs)
	}
	reconcile(t, s, j.ID)
	ts := jobTasks(t, s, j.ID)
	l := runOn(t, s, ts[0].ID, n.ID)
	if ch := next("first task running"); ch != ChannelJobs {
		t.Fatalf("a task of a reconciled job started: heard %q, want %s", ch, ChannelJobs)
	}
	runOn(t, s, ts[1].ID, n.ID)
	if err := s.Notify(ctx, marker); err != nil {
		t.Fatal(err)
	}
	if ch := next("second task running"); ch != marker {
		t.Fatalf("a task of a job due already started: heard %q, want no notification before the marker", ch)
	}
	if res := reconcile(t, s, j.ID); !res.Done {
		t.Fatal("the job was not due")
	}
	if err := s.SetTaskHealth(ctx, l, queue.HealthUnhealthy, "no answer"); err != nil {
		t.Fatal(err)
	}
	if ch := next("task unhealthy"); ch != ChannelJobs {
		t.Fatalf("a task of a reconciled job became unhealthy: heard %q, want %s", ch, ChannelJobs)
	}
	reconcile(t, s, j.ID)
	if _, err := s.ScaleJob(ctx, "web", 3); err != nil {
		t.Fatal(err)
	}
	if ch := next("scale"); ch != ChannelJobs {
		t.Fatalf("scale: heard %q, want %s", ch, ChannelJobs)
	}
}

// TestJobs_ReconcileWaitsForTheJobsChangesInFlight closes the one gap of
// the job wake-ups: a task change that commits while a reconciliation that
// did not see it commits stays quiet (the job looked due already), so
// ReconcileJob returns only once such a change has ended, and the job is
// then found due again.
func TestJobs_ReconcileWaitsForTheJobsChangesInFlight(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	j, _ := submit(t, s, "name: web\ncount: 1\ntask: {image: busybox}")
	reconcile(t, s, j.ID)
	task := jobTasks(t, s, j.ID)[0]
	runOn(t, s, task.ID, n.ID)
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT seq FROM job_changes WHERE job_id = $1`, j.ID).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	decide := func(v queue.JobView) queue.JobPlan {
		// A change of the job's task, made while the reconciliation runs
		// and committed only once the reconciliation has.
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Error(err)
			return scheduler.Reconcile(v)
		}
		if _, err := tx.Exec(ctx, `UPDATE tasks SET health = 'unhealthy' WHERE id = $1`, task.ID); err != nil {
			t.Error(err)
		}
		go func() {
			defer tx.Rollback(ctx)
			for {
				var ev int64
				if err := s.pool.QueryRow(ctx, `SELECT evaluated_seq FROM jobs WHERE id = $1`, j.ID).Scan(&ev); err != nil {
					committed <- err
					return
				}
				if ev == seq {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			committed <- tx.Commit(ctx)
		}()
		return scheduler.Reconcile(v)
	}
	res, err := s.ReconcileJob(ctx, j.ID, decide, nil)
	if err != nil || !res.Done {
		t.Fatalf("reconcile: %+v, %v", res, err)
	}
	ids, _, err := s.DueJobs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != j.ID {
		t.Fatalf("due after the reconciliation: %v, want the job (its task changed meanwhile)", ids)
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
}

// TestJobs_AnAgentRolesTaskChangeMakesItsJobDue: an agent with a role of
// its own, which may not read job tables, starts a job's task; the
// triggers, which run as their owner, make the job due and notify.
func TestJobs_AnAgentRolesTaskChangeMakesItsJobDue(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	heard := make(chan string, 16)
	lctx, unlisten := context.WithCancel(ctx)
	defer unlisten()
	go s.Listen(lctx, []string{ChannelJobs}, func(n Notification) { heard <- n.Channel })
	<-heard // connected
	j, _ := submit(t, s, "name: web\ntask: {image: busybox}")
	<-heard // job run
	reconcile(t, s, j.ID)
	task := jobTasks(t, s, j.ID)[0]
	if res := pass(t, s, placeOnly(task.ID, n.ID)); res.Placed != 1 {
		t.Fatalf("placing: %+v", res)
	}
	agent := agentStore(t, s, "n1")
	claim, err := agent.Claim(ctx, n.ID, 10)
	if err != nil || len(claim.Tasks) != 1 {
		t.Fatalf("claim: %+v, %v", claim.Tasks, err)
	}
	if err := agent.MarkRunning(ctx, claim.Tasks[0].Lease(), "c1"); err != nil {
		t.Fatal(err)
	}
	expectHeard(t, heard, ChannelJobs, 30*time.Second, "heard %q", "no notification in 30 s after the agent started the job's task")
	if res := reconcile(t, s, j.ID); !res.Done {
		t.Fatal("the job was not due after its task started")
	}
}
