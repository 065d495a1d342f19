package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// jobView is a view of a job named web of the given type, count and
// version at t0, whose versions all share template key "k" unless keys
// says otherwise.
func jobView(typ queue.JobType, count, version int) queue.JobView {
	spec := queue.NewJobSpec()
	spec.Name, spec.Type, spec.Count = "web", typ, count
	spec.Task.Image = "busybox"
	spec.Update.MinHealthyTime = queue.Duration(10 * time.Second)
	keys := map[int]string{}
	for v := 1; v <= version; v++ {
		keys[v] = fmt.Sprintf("k%d", v)
	}
	return queue.JobView{Now: t0, Keys: keys,
		Job: queue.Job{ID: uuid.New(), Name: "web", Type: typ, Version: version, Status: queue.JobRunning, Spec: spec}}
}

// healthyTask is a running task at index i of version v, healthy since ago.
func healthyTask(i, v int, ago time.Duration) queue.JobTask {
	since := t0.Add(-ago)
	return queue.JobTask{ID: uuid.New(), Index: i, Version: v, State: queue.Running, DesiredState: queue.DesiredRunning,
		Health: queue.HealthHealthy, HealthySince: &since, CreatedAt: since.Add(-time.Second)}
}

// startingTask is a task at index i of version v, created ago, not healthy yet.
func startingTask(i, v int, ago time.Duration) queue.JobTask {
	return queue.JobTask{ID: uuid.New(), Index: i, Version: v, State: queue.Running, DesiredState: queue.DesiredRunning,
		Health: queue.HealthStarting, CreatedAt: t0.Add(-ago)}
}

func runningDeployment(v queue.JobView, version int, started time.Duration) *queue.Deployment {
	deadline := t0.Add(-started).Add(10 * time.Minute)
	return &queue.Deployment{ID: uuid.New(), JobID: v.Job.ID, Version: version, State: queue.DeploymentRunning,
		StartedAt: t0.Add(-started), ProgressDeadline: &deadline, Desired: v.Job.Spec.Count}
}

func creates(p queue.JobPlan) []int {
	var out []int
	for _, c := range p.Create {
		out = append(out, c.Index)
	}
	slices.Sort(out)
	return out
}

func stops(p queue.JobPlan, tasks ...queue.JobTask) string {
	var out []string
	for _, s := range p.Stop {
		for i, t := range tasks {
			if t.ID == s.ID {
				out = append(out, fmt.Sprintf("#%d", i))
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func lastDeployment(t *testing.T, p queue.JobPlan) queue.Deployment {
	t.Helper()
	if len(p.Deployments) == 0 {
		t.Fatal("the plan writes no deployment")
	}
	return p.Deployments[len(p.Deployments)-1]
}

func TestReconcile_ServiceStartsCountTasksAndADeployment(t *testing.T) {
	v := jobView(queue.JobService, 3, 1)
	p := Reconcile(v)
	if got := creates(p); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("creates %v, want every index at once (missing tasks are not rate-limited)", got)
	}
	d := lastDeployment(t, p)
	if d.Version != 1 || d.State != queue.DeploymentRunning || d.Canaries != 0 || d.Desired != 3 {
		t.Fatalf("deployment = %+v", d)
	}
	if p.Diff != (queue.JobDiff{Create: 3}) {
		t.Fatalf("diff = %+v", p.Diff)
	}
}

func TestReconcile_ServiceDeploymentSucceedsOnceAllHealthyLongEnough(t *testing.T) {
	v := jobView(queue.JobService, 3, 1)
	v.Deployment = runningDeployment(v, 1, time.Minute)
	v.Tasks = []queue.JobTask{healthyTask(0, 1, time.Minute), healthyTask(1, 1, time.Minute), healthyTask(2, 1, 4*time.Second)}
	p := Reconcile(v)
	if d := lastDeployment(t, p); d.State != queue.DeploymentRunning || d.Healthy != 2 {
		t.Fatalf("deployment = %+v: one task has been healthy for 4s of the 10s min_healthy_time", d)
	}
	if !p.NextEval.Equal(t0.Add(6 * time.Second)) {
		t.Fatalf("next eval %v, want when the last task has been healthy long enough", p.NextEval)
	}
	v.Now = t0.Add(6 * time.Second)
	p = Reconcile(v)
	if d := lastDeployment(t, p); d.State != queue.DeploymentSuccessful || d.Healthy != 3 || p.Stable != 1 {
		t.Fatalf("deployment = %+v, stable %d", d, p.Stable)
	}
	if len(p.Create)+len(p.Stop) != 0 {
		t.Fatalf("a healthy service changes nothing: %+v", p)
	}
}

func TestReconcile_RollingUpdateReplacesOneAtATimeAfterItIsHealthy(t *testing.T) {
	v := jobView(queue.JobService, 3, 2)
	v.Job.StableVersion = 1
	old := []queue.JobTask{healthyTask(0, 1, time.Hour), healthyTask(1, 1, time.Hour), healthyTask(2, 1, time.Hour)}
	v.Tasks = old
	p := Reconcile(v)
	if got := creates(p); !slices.Equal(got, []int{0}) || len(p.Stop) != 0 {
		t.Fatalf("first step creates %v and stops %d, want one new task beside the old ones", got, len(p.Stop))
	}
	if p.Diff != (queue.JobDiff{Destructive: 3}) {
		t.Fatalf("diff = %+v", p.Diff)
	}
	d := lastDeployment(t, p)

	// The new task runs but is not healthy long enough: nothing moves.
	v.Deployment = &d
	v.Tasks = append(slices.Clone(old), healthyTask(0, 2, 5*time.Second))
	p = Reconcile(v)
	if len(p.Create)+len(p.Stop) != 0 {
		t.Fatalf("before min_healthy_time: creates %v, stops %d", creates(p), len(p.Stop))
	}
	// Healthy long enough: its old task stops and the next starts.
	v.Tasks = append(slices.Clone(old), healthyTask(0, 2, 10*time.Second))
	p = Reconcile(v)
	if got := creates(p); !slices.Equal(got, []int{1}) || stops(p, v.Tasks...) != "#0" {
		t.Fatalf("creates %v, stops %s; want index 1 created and the old task of index 0 stopped", got, stops(p, v.Tasks...))
	}
}

func TestReconcile_RollingUpdateMaxParallel(t *testing.T) {
	v := jobView(queue.JobService, 5, 2)
	v.Job.Spec.Update.MaxParallel = 2
	for i := 0; i < 5; i++ {
		v.Tasks = append(v.Tasks, healthyTask(i, 1, time.Hour))
	}
	v.Tasks = append(v.Tasks, startingTask(0, 2, time.Second))
	p := Reconcile(v)
	if got := creates(p); !slices.Equal(got, []int{1}) {
		t.Fatalf("creates %v, want index 1 only: one replacement is in flight of max_parallel 2", got)
	}
}

func TestReconcile_UnchangedTemplateMovesInPlace(t *testing.T) {
	v := jobView(queue.JobService, 5, 2)
	v.Keys[2] = v.Keys[1] // a scale: same template
	v.Tasks = []queue.JobTask{healthyTask(0, 1, time.Hour), healthyTask(1, 1, time.Hour), healthyTask(2, 1, time.Hour)}
	p := Reconcile(v)
	if len(p.InPlace) != 3 || !slices.Equal(creates(p), []int{3, 4}) || len(p.Stop) != 0 {
		t.Fatalf("in place %d, creates %v, stops %d", len(p.InPlace), creates(p), len(p.Stop))
	}
	if d := lastDeployment(t, p); d.Canaries != 0 || d.Healthy != 3 || d.Placed != 3 {
		t.Fatalf("deployment = %+v", d)
	}
}

func TestReconcile_ScaleDownStopsTheHighestIndices(t *testing.T) {
	v := jobView(queue.JobService, 2, 2)
	v.Keys[2] = v.Keys[1]
	v.Tasks = []queue.JobTask{healthyTask(0, 1, time.Hour), healthyTask(1, 1, time.Hour), healthyTask(2, 1, time.Hour), healthyTask(3, 1, time.Hour)}
	p := Reconcile(v)
	if got := stops(p, v.Tasks...); got != "#2,#3" {
		t.Fatalf("stops %s", got)
	}
}

func TestReconcile_CanaryWaitsForPromotion(t *testing.T) {
	v := jobView(queue.JobService, 3, 2)
	v.Job.Spec.Update.Canary = 1
	old := []queue.JobTask{healthyTask(0, 1, time.Hour), healthyTask(1, 1, time.Hour), healthyTask(2, 1, time.Hour)}
	v.Tasks = old
	p := Reconcile(v)
	d := lastDeployment(t, p)
	if got := creates(p); !slices.Equal(got, []int{0}) || !p.Create[0].Canary || d.Canaries != 1 {
		t.Fatalf("creates %v (%+v), deployment %+v", got, p.Create, d)
	}
	// The canary is healthy: the deployment waits, nothing is stopped.
	v.Deployment = &d
	v.Tasks = append(slices.Clone(old), healthyTask(0, 2, time.Minute))
	v.Now = t0.Add(time.Hour) // long past the progress deadline: a promotion has none
	p = Reconcile(v)
	d = lastDeployment(t, p)
	if len(p.Create)+len(p.Stop) != 0 || d.State != queue.DeploymentRunning || !strings.Contains(d.Reason, "orch job promote") {
		t.Fatalf("waiting for promotion: creates %v, stops %d, deployment %+v", creates(p), len(p.Stop), d)
	}
	// Promoted: the old task beside the canary stops, the roll goes on.
	d.Promoted = true
	v.Deployment = &d
	p = Reconcile(v)
	if got := creates(p); !slices.Equal(got, []int{1}) || stops(p, v.Tasks...) != "#0" {
		t.Fatalf("after promotion creates %v, stops %s", got, stops(p, v.Tasks...))
	}
}

func TestReconcile_FailedDeploymentRevertsToTheStableVersion(t *testing.T) {
	v := jobView(queue.JobService, 3, 3)
	v.Job.StableVersion = 2
	v.Job.Spec.Update.AutoRevert = true
	v.Deployment = runningDeployment(v, 3, time.Minute)
	sick := startingTask(0, 3, 30*time.Second)
	sick.Restarts = 1
	v.Tasks = []queue.JobTask{healthyTask(0, 2, time.Hour), healthyTask(1, 2, time.Hour), healthyTask(2, 2, time.Hour), sick}
	p := Reconcile(v)
	d := lastDeployment(t, p)
	if d.State != queue.DeploymentFailed || p.Revert != 2 || !strings.Contains(p.RevertReason, "auto-reverted to version 2") {
		t.Fatalf("deployment %+v, revert %d (%s)", d, p.Revert, p.RevertReason)
	}
	// Without auto_revert it fails, and the roll stops there.
	v.Job.Spec.Update.AutoRevert = false
	v.Job.Spec.Update.MaxParallel = 2 // room for another replacement, were it not failed
	p = Reconcile(v)
	if d := lastDeployment(t, p); d.State != queue.DeploymentFailed || p.Revert != 0 {
		t.Fatalf("deployment %+v, revert %d", d, p.Revert)
	}
	if len(p.Create) != 0 {
		t.Fatalf("a failed deployment goes no further: creates %v", creates(p))
	}
}

func TestReconcile_DeploymentDeadlines(t *testing.T) {
	v := jobView(queue.JobService, 1, 2)
	v.Job.Spec.Update.HealthyDeadline = queue.Duration(time.Minute)
	v.Deployment = runningDeployment(v, 2, 2*time.Minute)
	v.Tasks = []queue.JobTask{healthyTask(0, 1, time.Hour), startingTask(0, 2, 61*time.Second)}
	p := Reconcile(v)
	if d := lastDeployment(t, p); d.State != queue.DeploymentFailed || !strings.Contains(d.Reason, "healthy_deadline") {
		t.Fatalf("deployment %+v", d)
	}
	v.Tasks = []queue.JobTask{healthyTask(0, 1, time.Hour), startingTask(0, 2, 30*time.Second)}
	deadline := t0.Add(-time.Second)
	v.Deployment.ProgressDeadline = &deadline
	p = Reconcile(v)
	if d := lastDeployment(t, p); d.State != queue.DeploymentFailed || !strings.Contains(d.Reason, "progress_deadline") {
		t.Fatalf("deployment %+v", d)
	}
}

func TestReconcile_ReplacementsBackOff(t *testing.T) {
	v := jobView(queue.JobService, 2, 1)
	ended := t0.Add(-5 * time.Second)
	failed := func() queue.JobTask {
		return queue.JobTask{ID: uuid.New(), Index: 1, Version: 1, State: queue.Failed, DesiredState: queue.DesiredRunning, FinishedAt: &ended}
	}
	v.Tasks = []queue.JobTask{healthyTask(0, 1, time.Hour), failed()}
	p := Reconcile(v)
	if len(p.Create) != 1 || p.Create[0].Index != 1 || p.Create[0].Delay != time.Second {
		t.Fatalf("creates %+v, want index 1 after 1s", p.Create)
	}
	v.Tasks = append(v.Tasks, failed(), failed())
	p = Reconcile(v)
	if p.Create[0].Delay != 4*time.Second {
		t.Fatalf("after three failures the delay is %s, want 4s", p.Create[0].Delay)
	}
	// A task stopped on request is replaced at once.
	v.Tasks = []queue.JobTask{healthyTask(0, 1, time.Hour), {ID: uuid.New(), Index: 1, Version: 1, State: queue.Stopped, DesiredState: queue.DesiredStopped, FinishedAt: &ended}}
	if p = Reconcile(v); p.Create[0].Delay != 0 {
		t.Fatalf("delay %s after a stop", p.Create[0].Delay)
	}
}

func TestReconcile_Batch(t *testing.T) {
	v := jobView(queue.JobBatch, 3, 1)
	p := Reconcile(v)
	if !slices.Equal(creates(p), []int{0, 1, 2}) || p.Status != queue.JobRunning {
		t.Fatalf("creates %v, status %s", creates(p), p.Status)
	}
	done := func(i int, s queue.State) queue.JobTask {
		return queue.JobTask{ID: uuid.New(), Index: i, Version: 1, State: s, DesiredState: queue.DesiredRunning, Error: "exit 1"}
	}
	v.Tasks = []queue.JobTask{done(0, queue.Completed), done(1, queue.Completed), startingTask(2, 1, time.Second)}
	p = Reconcile(v)
	if len(p.Create) != 0 || p.Status != queue.JobRunning {
		t.Fatalf("creates %v, status %s", creates(p), p.Status)
	}
	v.Tasks[2] = done(2, queue.Completed)
	if p = Reconcile(v); p.Status != queue.JobComplete || !p.NextEval.Equal(never) {
		t.Fatalf("status %s, next %v", p.Status, p.NextEval)
	}
	v.Tasks[2] = done(2, queue.Failed)
	if p = Reconcile(v); p.Status != queue.JobFailed || !strings.Contains(p.StatusReason, "web.2 failed") || len(p.Create) != 0 {
		t.Fatalf("status %s (%s), creates %v", p.Status, p.StatusReason, creates(p))
	}
}

func TestReconcile_SystemOneTaskPerEligibleNode(t *testing.T) {
	v := jobView(queue.JobSystem, 1, 1)
	v.Job.Spec.Datacenters = []string{"dc1"}
	node := func(name, dc string) queue.Node {
		return queue.Node{ID: uuid.New(), Name: name, State: queue.NodeReady, Labels: map[string]string{"dc": dc}}
	}
	a, b, c, d := node("a", "dc1"), node("b", "dc1"), node("c", "dc2"), node("d", "dc1")
	b.Cordoned = true
	d.State = queue.NodeDown
	v.Nodes = []queue.Node{a, b, c, d}
	onB := healthyTask(0, 1, time.Hour)
	onB.NodeName = "b"
	gone := healthyTask(1, 1, time.Hour)
	gone.NodeName = "e"
	v.Tasks = []queue.JobTask{onB, gone}
	p := Reconcile(v)
	if len(p.Create) != 1 || p.Create[0].Node != "a" || p.Create[0].Index != 2 {
		t.Fatalf("creates %+v, want one on a (b is cordoned, c in dc2, d down), at the first free index", p.Create)
	}
	if got := stops(p, v.Tasks...); got != "#1" {
		t.Fatalf("stops %s, want the task of the node that is gone (the cordoned node keeps its own)", got)
	}
}

func TestReconcile_SystemUpdateReplacesOnTheSameNode(t *testing.T) {
	v := jobView(queue.JobSystem, 1, 2)
	var tasks []queue.JobTask
	for i, n := range []string{"a", "b"} {
		v.Nodes = append(v.Nodes, queue.Node{ID: uuid.New(), Name: n, State: queue.NodeReady})
		tk := healthyTask(i, 1, time.Hour)
		tk.Pin = n
		tasks = append(tasks, tk)
	}
	v.Tasks = tasks
	p := Reconcile(v)
	if len(p.Create) != 1 || p.Create[0].Node != "a" || p.Create[0].Index != 0 || stops(p, tasks...) != "#0" {
		t.Fatalf("creates %+v, stops %s: want a's task replaced first, and only it (max_parallel 1)", p.Create, stops(p, tasks...))
	}
}

func TestReconcile_PeriodicLaunchesTheDueTick(t *testing.T) {
	v := jobView(queue.JobPeriodic, 1, 1)
	v.Job.Spec.Periodic = &queue.PeriodicConfig{Cron: "@every 2s", TimeZone: "UTC", ProhibitOverlap: true}
	v.LastTick = t0.Add(-2 * time.Second)
	p := Reconcile(v)
	if p.Launch == nil || !p.Launch.Equal(t0) || p.LaunchSkipped != "" || !p.NextEval.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("launch %v (%s), next %v", p.Launch, p.LaunchSkipped, p.NextEval)
	}
	v.ChildrenRunning = 1
	if p = Reconcile(v); p.Launch == nil || !strings.Contains(p.LaunchSkipped, "prohibit_overlap") {
		t.Fatalf("launch %v, skipped %q", p.Launch, p.LaunchSkipped)
	}
	v.LastTick = t0
	if p = Reconcile(v); p.Launch != nil {
		t.Fatalf("launched %v twice", p.Launch)
	}
}

func TestReconcile_StoppedJobStopsItsTasksAndIsDeletedWhenPurged(t *testing.T) {
	v := jobView(queue.JobService, 2, 1)
	v.Job.Stopped, v.Job.Purge = true, true
	v.Deployment = runningDeployment(v, 1, time.Minute)
	v.Tasks = []queue.JobTask{healthyTask(0, 1, time.Hour), healthyTask(1, 1, time.Hour)}
	p := Reconcile(v)
	if len(p.Stop) != 2 || p.Delete || p.Status != queue.JobStopped || lastDeployment(t, p).State != queue.DeploymentCancelled {
		t.Fatalf("stops %d, delete %v, status %s", len(p.Stop), p.Delete, p.Status)
	}
	for i := range v.Tasks {
		v.Tasks[i].State, v.Tasks[i].DesiredState = queue.Stopped, queue.DesiredStopped
	}
	if p = Reconcile(v); !p.Delete || len(p.Stop) != 0 {
		t.Fatalf("delete %v, stops %d", p.Delete, len(p.Stop))
	}
}
