package queue

import (
	"time"

	"github.com/google/uuid"
)

// JobView is what one reconciliation of a job sees, read in the
// transaction that holds the job's row: the job with the spec of its
// version, its tasks, and what else its type needs. The reconciler
// (scheduler.Reconcile) turns it into a JobPlan without any I/O.
type JobView struct {
	// Now is the database's clock, which every time in the view is on.
	Now time.Time
	Job Job
	// Keys maps the versions of the job's tasks (and the job's own) to
	// their template keys: tasks whose key is the job version's run what
	// it asks for and move to it in place.
	Keys map[int]string
	// Deployment is the job's latest deployment, if any.
	Deployment *Deployment
	// Tasks are the job's tasks that have not ended, and those that ended
	// lately (a service's, for the backoff of their replacements) or at
	// all (a batch job's, to know which are done).
	Tasks []JobTask
	// Nodes are every node, for a system job.
	Nodes []Node
	// LastTick is a periodic job's latest tick launched or skipped (its
	// creation, before the first); ChildrenRunning counts its instances
	// that are still running, and ChildrenLive those with tasks that have
	// not ended yet.
	LastTick        time.Time
	ChildrenRunning int
	ChildrenLive    int
}

// JobTask is a task of a job as the reconciler sees it.
type JobTask struct {
	ID           uuid.UUID    `json:"id"`
	Index        int          `json:"index"`
	Version      int          `json:"version"`
	State        State        `json:"state"`
	DesiredState DesiredState `json:"desired_state"`
	Health       TaskHealth   `json:"health,omitempty"`
	// NodeName is where the task is placed; Pin the node a system job's
	// task is bound to (its node.name constraint).
	NodeName string `json:"node_name,omitempty"`
	Pin      string `json:"-"`
	// HealthySince is since when the task counts as healthy: running with
	// its health check passing, or without a check, running at all.
	HealthySince *time.Time `json:"-"`
	Restarts     int        `json:"restarts"`
	CreatedAt    time.Time  `json:"created_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	Error        string     `json:"error,omitempty"`
}

// Live reports whether the task has not ended and nobody asked it to stop.
func (t *JobTask) Live() bool {
	return !t.State.Terminal() && t.DesiredState == DesiredRunning
}

// JobPlan is what one reconciliation decided: the tasks to create and to
// stop, the tasks that move to the job's version in place, the deployment
// rows to write, and the job's status. The store writes it in the
// transaction that read the view.
type JobPlan struct {
	Create  []NewJobTask
	Stop    []StopJobTask
	InPlace []uuid.UUID
	// Deployments are rows to insert or update (by id).
	Deployments []Deployment
	Status      JobStatus
	// StatusReason says why a job failed, or what it waits for.
	StatusReason string
	// Stable, when set, is the version whose deployment just succeeded.
	Stable int
	// Revert, when set, is the version whose spec is submitted again as a
	// new version: the deployment of the job's version failed and the job
	// reverts automatically. RevertReason says why.
	Revert       int
	RevertReason string
	// Launch is a periodic job's tick to launch an instance for; with
	// LaunchSkipped set it is recorded as skipped instead, for that reason.
	Launch        *time.Time
	LaunchSkipped string
	// Delete is set once a job to be purged has nothing left running.
	Delete bool
	// NextEval is when the job should be looked at again at the latest.
	NextEval time.Time
	// Diff is the whole change towards the job's version, of which the
	// rest of the plan is the first step (a rolling update takes several).
	Diff JobDiff
}

// NewJobTask is a task to create for a job.
type NewJobTask struct {
	Index   int `json:"index"`
	Version int `json:"version"`
	// Node pins a system job's task to its node.
	Node string `json:"node,omitempty"`
	// Delay holds a replacement back: the backoff after failures at its
	// index.
	Delay time.Duration `json:"delay,omitempty"`
	// Canary marks a task started beside the old ones before a promotion.
	Canary bool `json:"canary,omitempty"`
}

// StopJobTask is a task to stop, and why.
type StopJobTask struct {
	ID     uuid.UUID `json:"id"`
	Reason string    `json:"reason"`
}

// JobDiff counts what it takes to bring a job to its version: tasks to
// create, tasks to update in place (the same template: no restart) or by
// replacing them (destructive), and tasks to stop.
type JobDiff struct {
	Create      int `json:"create"`
	InPlace     int `json:"in_place"`
	Destructive int `json:"destructive"`
	Stop        int `json:"stop"`
	Unchanged   int `json:"unchanged"`
}

// ReconcileFallback is how long a job that nothing changes waits before it
// is looked at again anyway: the timer behind the triggers.
const ReconcileFallback = 30 * time.Second

// ReplaceWindow is how far back a service's ended tasks count towards the
// backoff of their replacements.
const ReplaceWindow = 10 * time.Minute
