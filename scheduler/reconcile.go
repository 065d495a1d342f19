package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// never is the NextEval of a job that only a change wakes: a finished
// batch job, a stopped one. The store keeps it as 'infinity'.
var never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Reconcile compares a job's desired state with its tasks and decides
// what to write: the pure half of a reconciliation (the store reads the
// view and writes the plan in one transaction that holds the job's row).
//
//   - service: keep Count tasks of the job's version running, one per
//     index 0..Count-1; replace what ended (after a backoff if it ended
//     lately); roll outdated tasks over, at most MaxParallel at a time, a
//     new task beside the old one, the old one stopped once the new one
//     has been healthy for MinHealthyTime; canaries first when asked;
//     tasks whose template did not change move to the version in place.
//     A deployment row follows each version.
//   - batch: run Count tasks to completion; the job is complete when every
//     index completed, failed when one failed for good.
//   - system: one task on every eligible node, pinned to it.
//   - periodic: launch an instance at the latest due tick.
func Reconcile(v queue.JobView) queue.JobPlan {
	p := queue.JobPlan{Status: v.Job.Status, StatusReason: v.Job.StatusReason, NextEval: v.Now.Add(queue.ReconcileFallback)}
	r := &reconciler{v: v, p: &p, next: p.NextEval}
	if v.Job.Stopped {
		r.stopAll()
	} else {
		switch v.Job.Type {
		case queue.JobService:
			r.service()
		case queue.JobBatch:
			r.batch()
		case queue.JobSystem:
			r.system()
		case queue.JobPeriodic:
			r.periodic()
		}
	}
	p.NextEval = r.next
	return p
}

type reconciler struct {
	v    queue.JobView
	p    *queue.JobPlan
	next time.Time
}

// wake asks for the job to be looked at again by t.
func (r *reconciler) wake(t time.Time) {
	if t.Before(r.next) {
		r.next = t
	}
	if r.next.Before(r.v.Now) {
		r.next = r.v.Now
	}
}

func (r *reconciler) stop(t queue.JobTask, why string) {
	r.p.Stop = append(r.p.Stop, queue.StopJobTask{ID: t.ID, Reason: why})
}

// matches reports whether t runs what the job's version asks for: it is of
// the version, or of one with the same template key.
func (r *reconciler) matches(t queue.JobTask) bool {
	v := r.v.Job.Version
	if t.Version == v {
		return true
	}
	k, ok := r.v.Keys[t.Version]
	return ok && k == r.v.Keys[v]
}

// healthy reports whether t has counted as healthy for at least min, and
// asks to be woken when it will have.
func (r *reconciler) healthy(t queue.JobTask, min time.Duration) bool {
	if !t.Live() || t.HealthySince == nil {
		return false
	}
	at := t.HealthySince.Add(min)
	if at.After(r.v.Now) {
		r.wake(at)
		return false
	}
	return true
}

// stopAll stops a stopped job's tasks, cancels its deployment and, for a
// purge, deletes it once nothing of it runs.
func (r *reconciler) stopAll() {
	r.p.Status, r.p.StatusReason = queue.JobStopped, "stopped by user"
	live := 0
	for _, t := range r.v.Tasks {
		if t.Live() {
			r.stop(t, "job stopped")
			r.p.Diff.Stop++
		}
		if !t.State.Terminal() {
			live++
		}
	}
	if d := r.v.Deployment; d != nil && d.State == queue.DeploymentRunning {
		c := *d
		c.State, c.Reason, c.EndedAt = queue.DeploymentCancelled, "job stopped", &r.v.Now
		r.p.Deployments = append(r.p.Deployments, c)
	}
	r.p.Delete = r.v.Job.Purge && live == 0 && r.v.ChildrenLive == 0
	r.next = never
}

// slot is one index of a service or batch job: the tasks at it that run
// the job's version (news) and those that do not (olds).
type slot struct {
	news, olds []queue.JobTask
}

// slots sorts the live tasks by index, moving tasks whose template did not
// change to the job's version in place.
func (r *reconciler) slots() map[int]*slot {
	out := map[int]*slot{}
	for _, t := range r.v.Tasks {
		if !t.Live() {
			continue
		}
		s := out[t.Index]
		if s == nil {
			s = &slot{}
			out[t.Index] = s
		}
		if r.matches(t) {
			if t.Version != r.v.Job.Version {
				r.p.InPlace = append(r.p.InPlace, t.ID)
				r.p.Diff.InPlace++
				t.Version = r.v.Job.Version
			}
			s.news = append(s.news, t)
		} else {
			s.olds = append(s.olds, t)
		}
	}
	return out
}

// extras stops the live tasks at indices the count no longer covers.
func (r *reconciler) extras(slots map[int]*slot, count int) {
	for i, s := range slots {
		if i < count {
			continue
		}
		for _, t := range append(s.news, s.olds...) {
			r.stop(t, fmt.Sprintf("scaled to %d", count))
			r.p.Diff.Stop++
		}
		delete(slots, i)
	}
}

// keepOne stops all but the best of several tasks of the version at one
// index (healthy first, then the oldest): they cannot arise from one
// reconciler, but nothing else should hold two.
func (r *reconciler) keepOne(s *slot) {
	if len(s.news) < 2 {
		return
	}
	slices.SortStableFunc(s.news, func(a, b queue.JobTask) int {
		ha, hb := a.HealthySince != nil, b.HealthySince != nil
		if ha != hb {
			if ha {
				return -1
			}
			return 1
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	for _, t := range s.news[1:] {
		r.stop(t, "duplicate at its index")
	}
	s.news = s.news[:1]
}

// backoff is the delay before a task at index i is created again: the
// restart backoff, counted over the tasks at i that ended lately without
// being asked to.
func (r *reconciler) backoff(i int) time.Duration {
	n := 0
	for _, t := range r.v.Tasks {
		if t.Index == i && t.State.Terminal() && t.DesiredState == queue.DesiredRunning &&
			t.FinishedAt != nil && r.v.Now.Sub(*t.FinishedAt) < queue.ReplaceWindow {
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return queue.DefaultBackoff.Delay(n - 1)
}

func (r *reconciler) create(i int, canary bool) {
	r.p.Create = append(r.p.Create, queue.NewJobTask{Index: i, Version: r.v.Job.Version, Delay: r.backoff(i), Canary: canary})
}

func (r *reconciler) service() {
	v, spec := r.v, r.v.Job.Spec
	u := spec.Update
	minHealthy := time.Duration(u.MinHealthyTime)
	r.p.Status, r.p.StatusReason = queue.JobRunning, ""
	slots := r.slots()
	r.extras(slots, spec.Count)

	// The deployment of the version: the one there is, or a new one.
	d := v.Deployment
	var write []queue.Deployment
	if d != nil && d.Version != v.Job.Version && d.State == queue.DeploymentRunning {
		c := *d
		c.State, c.Reason, c.EndedAt = queue.DeploymentCancelled, fmt.Sprintf("superseded by version %d", v.Job.Version), &v.Now
		write = append(write, c)
	}
	if d == nil || d.Version != v.Job.Version {
		outdated := false
		for _, s := range slots {
			outdated = outdated || (len(s.olds) > 0 && len(s.news) == 0)
		}
		deadline := v.Now.Add(time.Duration(u.ProgressDeadline))
		d = &queue.Deployment{ID: uuid.Must(uuid.NewV7()), JobID: v.Job.ID, Version: v.Job.Version,
			State: queue.DeploymentRunning, StartedAt: v.Now, ProgressDeadline: &deadline}
		if outdated {
			d.Canaries = min(u.Canary, spec.Count)
		}
	}
	dep := *d
	rolling := dep.State == queue.DeploymentRunning
	promoted := dep.Canaries == 0 || dep.Promoted

	// Each index: create what is missing, stop what a healthy new task
	// replaced, and count the replacements in flight.
	inflight, canaries := 0, 0
	var outdated []int
	for i := 0; i < spec.Count; i++ {
		s := slots[i]
		if s == nil {
			s = &slot{}
			slots[i] = s
		}
		r.keepOne(s)
		switch {
		case len(s.news) == 0 && len(s.olds) == 0:
			r.create(i, false)
			r.p.Diff.Create++
		case len(s.news) == 0:
			outdated = append(outdated, i)
			r.p.Diff.Destructive++
		case len(s.olds) == 0:
			r.p.Diff.Unchanged++
		default: // a replacement under way
			r.p.Diff.Destructive++
			canaries++
			if r.healthy(s.news[0], minHealthy) && promoted {
				for _, t := range s.olds {
					r.stop(t, fmt.Sprintf("replaced by version %d", v.Job.Version))
				}
			} else {
				inflight++
			}
		}
	}
	r.deployment(&dep, slots, write)
	// Start replacements, unless the deployment failed: the canaries until
	// a promotion, then up to MaxParallel at a time.
	if rolling && dep.State == queue.DeploymentRunning {
		room := u.MaxParallel - inflight
		if !promoted {
			room = dep.Canaries - canaries
		}
		for _, i := range outdated {
			if room <= 0 {
				break
			}
			r.create(i, !promoted)
			room--
		}
	}
}

// deployment brings the version's deployment up to date: its counts, and
// whether it succeeded, failed (reverting when asked) or waits.
func (r *reconciler) deployment(d *queue.Deployment, slots map[int]*slot, write []queue.Deployment) {
	v, u := r.v, r.v.Job.Spec.Update
	if d.State.Terminal() {
		// Its counts froze when it ended.
		r.p.Deployments = write
		if d.State == queue.DeploymentFailed {
			r.p.StatusReason = fmt.Sprintf("the deployment of version %d failed: %s", d.Version, d.Reason)
		}
		return
	}
	minHealthy := time.Duration(u.MinHealthyTime)
	prevHealthy := d.Healthy
	d.Desired, d.Placed, d.Healthy, d.Unhealthy = v.Job.Spec.Count, 0, 0, 0
	var sick []string
	complete := true
	for i := 0; i < v.Job.Spec.Count; i++ {
		s := slots[i]
		if len(s.news) == 0 || len(s.olds) > 0 {
			complete = false
		}
		if len(s.news) == 0 {
			continue
		}
		d.Placed++
		if r.healthy(s.news[0], minHealthy) {
			d.Healthy++
		} else {
			complete = false
		}
	}
	for _, t := range v.Tasks {
		if !r.matches(t) || t.Index >= v.Job.Spec.Count {
			continue
		}
		if why := r.unhealthy(t, d); why != "" {
			d.Unhealthy++
			sick = append(sick, queue.JobTaskName(v.Job.Name, t.Index)+" "+why)
		}
	}
	r.judge(d, prevHealthy, complete, sick)
	r.p.Deployments = append(write, *d)
	switch {
	case d.NeedsPromotion():
		r.p.StatusReason = d.Reason
	case d.State == queue.DeploymentFailed:
		r.p.StatusReason = fmt.Sprintf("the deployment of version %d failed: %s", d.Version, d.Reason)
	}
}

// unhealthy says why a task of the deployment's version is unhealthy ("" if
// it is not): its check fails, it failed or restarted since the
// deployment began, or it was not healthy within healthy_deadline.
func (r *reconciler) unhealthy(t queue.JobTask, d *queue.Deployment) string {
	u := r.v.Job.Spec.Update
	fresh := !t.CreatedAt.Before(d.StartedAt)
	switch {
	case t.Live() && t.Health == queue.HealthUnhealthy:
		return "is failing its health check"
	case fresh && t.State == queue.Failed && t.DesiredState == queue.DesiredRunning:
		return "failed: " + t.Error
	case fresh && t.Live() && t.Restarts > 0:
		return fmt.Sprintf("restarted %d times", t.Restarts)
	case t.Live() && !r.healthy(t, 0):
		since := t.CreatedAt
		if since.Before(d.StartedAt) {
			since = d.StartedAt
		}
		at := since.Add(time.Duration(u.HealthyDeadline))
		if !at.After(r.v.Now) {
			return fmt.Sprintf("was not healthy within healthy_deadline (%s)", u.HealthyDeadline)
		}
		r.wake(at)
	}
	return ""
}

// judge decides a running deployment's fate.
func (r *reconciler) judge(d *queue.Deployment, prevHealthy int, complete bool, sick []string) {
	v, u := r.v, r.v.Job.Spec.Update
	waiting := d.Canaries > 0 && !d.Promoted
	if d.Healthy > prevHealthy {
		at := v.Now.Add(time.Duration(u.ProgressDeadline))
		d.ProgressDeadline = &at
	}
	var fail string
	switch {
	case len(sick) > 0:
		fail = strings.Join(sick, "; ")
	case waiting && d.Healthy >= d.Canaries:
		d.Reason = fmt.Sprintf("%d of %d canaries healthy: waiting for orch job promote %s", d.Healthy, d.Canaries, v.Job.Name)
		return // a promotion has no deadline
	case d.ProgressDeadline != nil && !d.ProgressDeadline.After(v.Now):
		fail = fmt.Sprintf("no task became healthy within progress_deadline (%s)", u.ProgressDeadline)
	case complete && !waiting:
		d.State, d.Reason, d.EndedAt = queue.DeploymentSuccessful, fmt.Sprintf("%d of %d tasks healthy", d.Healthy, d.Desired), &v.Now
		r.p.Stable = d.Version
		return
	}
	if fail == "" {
		if waiting {
			d.Reason = fmt.Sprintf("%d of %d canaries healthy", d.Healthy, d.Canaries)
		} else {
			d.Reason = fmt.Sprintf("%d of %d tasks healthy", d.Healthy, d.Desired)
		}
		if d.ProgressDeadline != nil {
			r.wake(*d.ProgressDeadline)
		}
		return
	}
	d.State, d.Reason, d.EndedAt = queue.DeploymentFailed, fail, &v.Now
	if u.AutoRevert && v.Job.StableVersion > 0 && v.Job.StableVersion != v.Job.Version {
		r.p.Revert = v.Job.StableVersion
		r.p.RevertReason = fmt.Sprintf("auto-reverted to version %d: the deployment of version %d failed: %s", v.Job.StableVersion, v.Job.Version, fail)
		d.Reason += fmt.Sprintf("; reverting to version %d", v.Job.StableVersion)
		r.wake(v.Now)
	}
}

func (r *reconciler) batch() {
	v, spec := r.v, r.v.Job.Spec
	slots := r.slots()
	r.extras(slots, spec.Count)
	done, live := 0, 0
	var failed []string
	for i := 0; i < spec.Count; i++ {
		s := slots[i]
		if s == nil {
			s = &slot{}
		}
		for _, t := range s.olds {
			r.stop(t, fmt.Sprintf("replaced by version %d", v.Job.Version))
		}
		r.keepOne(s)
		if len(s.news) > 0 {
			live++
			r.p.Diff.Unchanged++
			continue
		}
		switch why, ok := r.ended(i); {
		case ok && why == "":
			done++
			r.p.Diff.Unchanged++
		case ok:
			failed = append(failed, why)
		default:
			if len(s.olds) > 0 {
				r.p.Diff.Destructive++
			} else {
				r.p.Diff.Create++
			}
			r.create(i, false)
			live++
		}
	}
	switch {
	case done == spec.Count:
		r.p.Status, r.p.StatusReason = queue.JobComplete, fmt.Sprintf("%d of %d tasks completed", done, spec.Count)
		r.next = never
	case len(failed) > 0 && live == 0:
		r.p.Status, r.p.StatusReason = queue.JobFailed, strings.Join(failed, "; ")
		r.next = never
	case len(failed) > 0:
		r.p.Status, r.p.StatusReason = queue.JobRunning, strings.Join(failed, "; ")
	default:
		r.p.Status, r.p.StatusReason = queue.JobRunning, fmt.Sprintf("%d of %d tasks completed", done, spec.Count)
	}
}

// ended reports whether index i of a batch job has ended for good: ok with
// "" when a task of the version completed there, ok with why when one
// failed (its restart policy gave up on it).
func (r *reconciler) ended(i int) (why string, ok bool) {
	for _, t := range r.v.Tasks {
		if t.Index != i || !r.matches(t) || t.DesiredState != queue.DesiredRunning {
			continue
		}
		switch t.State {
		case queue.Completed:
			return "", true
		case queue.Failed:
			why = fmt.Sprintf("%s failed", queue.JobTaskName(r.v.Job.Name, i))
			switch t.Restarts {
			case 0:
			case 1:
				why += " after 1 restart"
			default:
				why += fmt.Sprintf(" after %d restarts", t.Restarts)
			}
			if t.Error != "" {
				why += ": " + t.Error
			}
			ok = true
		}
	}
	return why, ok
}

// eligible reports whether a system job runs on node n, and if not,
// whether that is because the node no longer fits the job (rather than
// being down, cordoned or drained, which keeps what runs there).
func (r *reconciler) eligible(n *queue.Node) (ok, misfit bool) {
	spec := r.v.Job.Spec
	if len(spec.Datacenters) > 0 && !slices.Contains(spec.Datacenters, n.Labels[queue.LabelDatacenter]) {
		return false, true
	}
	for _, c := range spec.Constraints {
		if !c.MatchesNode(n) {
			return false, true
		}
	}
	if (spec.Task.Privileged || spec.Task.Network == "host") && n.Labels[queue.LabelAllowPrivileged] != "true" {
		return false, true
	}
	if spec.Task.HostMounts() && n.Labels[queue.LabelAllowHostMounts] != "true" {
		return false, true
	}
	return n.State == queue.NodeReady && !n.Cordoned && !n.Draining, false
}

func (r *reconciler) system() {
	v, u := r.v, r.v.Job.Spec.Update
	minHealthy := time.Duration(u.MinHealthyTime)
	r.p.Status, r.p.StatusReason = queue.JobRunning, ""
	byNode := map[string]*slot{}
	used := map[int]bool{}
	for _, t := range v.Tasks {
		if !t.Live() {
			continue
		}
		used[t.Index] = true
		node := t.Pin
		if node == "" {
			node = t.NodeName
		}
		s := byNode[node]
		if s == nil {
			s = &slot{}
			byNode[node] = s
		}
		if r.matches(t) {
			if t.Version != v.Job.Version {
				r.p.InPlace = append(r.p.InPlace, t.ID)
				r.p.Diff.InPlace++
				t.Version = v.Job.Version
			}
			s.news = append(s.news, t)
		} else {
			s.olds = append(s.olds, t)
		}
	}
	free := 0
	nextIndex := func() int {
		for used[free] {
			free++
		}
		used[free] = true
		return free
	}
	known := map[string]bool{}
	inflight := 0
	type replace struct {
		node string
		olds []queue.JobTask
	}
	var outdated []replace
	nodes := slices.Clone(v.Nodes)
	slices.SortFunc(nodes, func(a, b queue.Node) int { return strings.Compare(a.Name, b.Name) })
	for i := range nodes {
		n := &nodes[i]
		known[n.Name] = true
		ok, misfit := r.eligible(n)
		s := byNode[n.Name]
		if s == nil {
			if ok {
				r.p.Create = append(r.p.Create, queue.NewJobTask{Index: nextIndex(), Version: v.Job.Version, Node: n.Name})
				r.p.Diff.Create++
			}
			continue
		}
		if misfit {
			for _, t := range append(s.news, s.olds...) {
				r.stop(t, "node "+n.Name+" no longer fits the job")
				r.p.Diff.Stop++
			}
			continue
		}
		r.keepOne(s)
		switch {
		case len(s.news) > 0 && len(s.olds) > 0:
			for _, t := range s.olds {
				r.stop(t, fmt.Sprintf("replaced by version %d", v.Job.Version))
			}
			fallthrough
		case len(s.news) > 0:
			r.p.Diff.Unchanged++
			if !r.healthy(s.news[0], minHealthy) && ok {
				inflight++ // an update under way (a node that is down holds nothing up)
			}
		case ok:
			outdated = append(outdated, replace{n.Name, s.olds})
			r.p.Diff.Destructive++
		}
	}
	for node, s := range byNode {
		if !known[node] {
			for _, t := range append(s.news, s.olds...) {
				r.stop(t, "node "+node+" is gone")
				r.p.Diff.Stop++
			}
		}
	}
	// A node runs one task of the job: the old one stops as the new one is
	// created (a host port it publishes could not be held twice).
	for _, o := range outdated {
		if inflight >= u.MaxParallel {
			break
		}
		for _, t := range o.olds {
			r.stop(t, fmt.Sprintf("replaced by version %d", v.Job.Version))
		}
		r.p.Create = append(r.p.Create, queue.NewJobTask{Index: o.olds[0].Index, Version: v.Job.Version, Node: o.node})
		inflight++
	}
}

func (r *reconciler) periodic() {
	v := r.v
	r.p.Status, r.p.StatusReason = queue.JobRunning, ""
	sched, err := v.Job.Spec.Periodic.Schedule()
	if err != nil { // validated when submitted; a zone database may change
		r.p.StatusReason = err.Error()
		r.next = never
		return
	}
	tick, skipped, ok, next := sched.Due(v.LastTick, v.Now)
	if ok {
		r.p.Launch = &tick
		if v.Job.Spec.Periodic.ProhibitOverlap && v.ChildrenRunning > 0 {
			r.p.LaunchSkipped = "the previous instance is still running (prohibit_overlap)"
		}
		if skipped > 0 {
			r.p.StatusReason = fmt.Sprintf("%d earlier ticks were missed (one launch catches up)", skipped)
		}
	}
	r.next = next
}
