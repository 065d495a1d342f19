package coordinator

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/scheduler"
)

// JobPlanResult is the answer to POST /jobs/{name}/plan: what orch job run
// of the spec would do, computed by the reconciler and the scheduler on
// what the database holds now. It changes nothing.
type JobPlanResult struct {
	Job  string        `json:"job"`
	Type queue.JobType `json:"type"`
	// Exists: the job exists. Changed: running the spec makes a new
	// version (or resumes a stopped job); Version is the version the job
	// would run, CurrentVersion the one it runs now (0: none).
	Exists         bool     `json:"exists"`
	Changed        bool     `json:"changed"`
	Version        int      `json:"version"`
	CurrentVersion int      `json:"current_version,omitempty"`
	SpecDiff       []string `json:"spec_diff,omitempty"`
	// Diff counts the tasks to create, update in place or by replacing
	// them, and stop, over the whole update.
	Diff queue.JobDiff `json:"diff"`
	// Tasks are the tasks the first step creates, each with the node it
	// would go to or why none would take it.
	Tasks []PlannedTask `json:"tasks"`
	// Stop names the tasks the first step stops, with why.
	Stop []string `json:"stop,omitempty"`
	// Notes explain what the plan does not show.
	Notes []string `json:"notes,omitempty"`
}

// PlannedTask is a task a plan would create and where it would go.
type PlannedTask struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Canary  bool   `json:"canary,omitempty"`
	// Node is the node the scheduler would choose now; Reason says why
	// none would take it.
	Node   string        `json:"node,omitempty"`
	Reason string        `json:"reason,omitempty"`
	Delay  time.Duration `json:"delay,omitempty"`
}

func (c *Coordinator) planJob(w http.ResponseWriter, r *http.Request) {
	spec, err := DecodeJob(http.MaxBytesReader(w, r.Body, MaxBodyBytes+1))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if name := r.PathValue("name"); spec.Name != name {
		c.writeError(w, r, queue.Invalid("name", fmt.Sprintf("the spec is of job %q, the path names %q", spec.Name, name), "plan the spec at /jobs/"+spec.Name+"/plan"))
		return
	}
	if !c.checkJob(w, r, spec) {
		return
	}
	pv, err := c.store.JobPlanView(r.Context(), spec, c.opts.NodeDownTimeout)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	v := pv.View
	out := JobPlanResult{Job: spec.Name, Type: spec.Type, Exists: pv.Exists, Changed: pv.Changed, Version: v.Job.Version, Tasks: []PlannedTask{}}
	if pv.Exists {
		out.CurrentVersion = pv.CurrentVersion
		if v.Job.Version != pv.CurrentVersion {
			out.SpecDiff = queue.DiffSpecs(pv.Current, spec)
		}
	}
	if !pv.Changed {
		out.Notes = append(out.Notes, "the spec is the job's version: running it changes nothing")
		writeJSON(w, http.StatusOK, out)
		return
	}
	plan := scheduler.Reconcile(v)
	out.Diff = plan.Diff
	out.Tasks = c.placeForPlan(spec, plan.Create, pv.Snapshot)
	names := map[uuid.UUID]string{}
	for _, t := range v.Tasks {
		names[t.ID] = queue.JobTaskName(spec.Name, t.Index)
	}
	for _, s := range plan.Stop {
		out.Stop = append(out.Stop, names[s.ID]+": "+s.Reason)
	}
	if n := plan.Diff.Destructive - len(plan.Create) + plan.Diff.Create; n > 0 && spec.Type == queue.JobService {
		out.Notes = append(out.Notes, fmt.Sprintf("a rolling update replaces the other %d outdated tasks, %d at a time, each once its replacement is healthy for %s",
			n, spec.Update.MaxParallel, spec.Update.MinHealthyTime))
	}
	if spec.Type == queue.JobPeriodic {
		if sched, err := spec.Periodic.Schedule(); err == nil {
			out.Notes = append(out.Notes, "the next launch would be at "+sched.Next(v.Now).Format(time.RFC3339))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// placeForPlan asks the scheduler where each new task of a plan would go
// on the cluster as it is now.
func (c *Coordinator) placeForPlan(spec queue.JobSpec, create []queue.NewJobTask, snap queue.Snapshot) []PlannedTask {
	out := make([]PlannedTask, 0, len(create))
	tasks := make([]queue.Task, 0, len(create))
	for _, nt := range create {
		ts, err := spec.TaskSpec(nt.Index)
		if err != nil {
			continue // validated already
		}
		if nt.Node != "" {
			ts.Constraints = append(ts.Constraints, queue.Constraint{Key: queue.ConstraintNodeName, Op: queue.OpEqual, Value: nt.Node})
		}
		tasks = append(tasks, queue.Task{ID: uuid.New(), TaskSpec: ts, State: queue.Pending, DesiredState: queue.DesiredRunning})
		out = append(out, PlannedTask{Name: ts.Name, Version: nt.Version, Canary: nt.Canary, Delay: nt.Delay})
	}
	plan := c.sched.Plan(slices.Clone(tasks), snap)
	nodes := map[uuid.UUID]string{}
	for _, n := range snap.Nodes {
		nodes[n.ID] = n.Name
	}
	placed := map[uuid.UUID]string{}
	for _, p := range plan.Placements {
		placed[p.TaskID] = nodes[p.NodeID]
	}
	for i, t := range tasks {
		out[i].Node, out[i].Reason = placed[t.ID], plan.Unplaced[t.ID]
	}
	return out
}
