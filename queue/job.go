package queue

import (
	"strconv"
	"time"

	"github.com/google/uuid"
)

// JobType says how a job's tasks are kept: services run for ever, batch
// jobs run to completion, system jobs run once on every eligible node, and
// periodic jobs launch a batch instance on every tick of a cron schedule.
type JobType string

const (
	JobService  JobType = "service"
	JobBatch    JobType = "batch"
	JobSystem   JobType = "system"
	JobPeriodic JobType = "periodic"
)

// JobTypes lists every job type.
var JobTypes = []JobType{JobService, JobBatch, JobSystem, JobPeriodic}

// JobStatus is where a job is in its life as a whole.
type JobStatus string

const (
	// JobRunning: the job's tasks are kept as its spec says.
	JobRunning JobStatus = "running"
	// JobComplete: every task of a batch job completed.
	JobComplete JobStatus = "complete"
	// JobFailed: a task of a batch job failed for good.
	JobFailed JobStatus = "failed"
	// JobStopped: a user stopped the job; its tasks are stopped.
	JobStopped JobStatus = "stopped"
)

// Job is a job as orch tracks it: its name and type, the version it should
// run, and how it is doing. Its spec is the one of Version.
type Job struct {
	ID      uuid.UUID `json:"id"`
	Name    string    `json:"name"`
	Type    JobType   `json:"type"`
	Version int       `json:"version"`
	// StableVersion is the last version whose deployment succeeded (0: none).
	StableVersion int       `json:"stable_version,omitempty"`
	Status        JobStatus `json:"status"`
	StatusReason  string    `json:"status_reason,omitempty"`
	// Stopped is set once a user stopped the job; Purge when they asked for
	// it to be deleted once its tasks have ended.
	Stopped bool `json:"stopped,omitempty"`
	Purge   bool `json:"purge,omitempty"`
	// ParentID names the periodic job that launched this one.
	ParentID  *uuid.UUID `json:"parent_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	Spec      JobSpec    `json:"spec"`
}

// JobVersion is one version of a job's spec. Versions are never changed:
// a revert submits an old spec as a new version.
type JobVersion struct {
	JobID   uuid.UUID `json:"job_id"`
	Version int       `json:"version"`
	Spec    JobSpec   `json:"spec"`
	// SecretKeys names the version's secrets; their values are never shown.
	SecretKeys []string `json:"secret_keys,omitempty"`
	// Generation counts the forced replacements of every task (job restart,
	// a changed secret): tasks of another generation are replaced even
	// when the spec is the same.
	Generation int `json:"generation"`
	// TemplateKey identifies what a task of this version runs; two
	// versions with the same key can swap tasks in place.
	TemplateKey string `json:"template_key"`
	// Reason says how the version came about: submitted, scaled to N,
	// reverted to version N, restarted, auto-reverted after a failed
	// deployment.
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Diff lists what changed from the version before (filled by readers
	// that ask for it).
	Diff []string `json:"diff,omitempty"`
}

// DeploymentState is where a deployment is.
type DeploymentState string

const (
	DeploymentRunning    DeploymentState = "running"
	DeploymentSuccessful DeploymentState = "successful"
	DeploymentFailed     DeploymentState = "failed"
	// DeploymentCancelled: a newer version (or a stop) took its place.
	DeploymentCancelled DeploymentState = "cancelled"
)

// Terminal reports whether the deployment has ended.
func (s DeploymentState) Terminal() bool { return s != DeploymentRunning }

// Deployment is the roll-out of one version of a service: how many of its
// tasks are placed and healthy, and how it ended.
type Deployment struct {
	ID      uuid.UUID       `json:"id"`
	JobID   uuid.UUID       `json:"job_id"`
	Version int             `json:"version"`
	State   DeploymentState `json:"state"`
	// Canaries is how many new tasks run beside the old ones until a user
	// promotes the deployment.
	Canaries  int  `json:"canaries,omitempty"`
	Promoted  bool `json:"promoted,omitempty"`
	Desired   int  `json:"desired"`
	Placed    int  `json:"placed"`
	Healthy   int  `json:"healthy"`
	Unhealthy int  `json:"unhealthy"`
	// Reason says why it failed or was cancelled, or what it waits for.
	Reason    string    `json:"reason,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// ProgressDeadline is when it fails unless another task becomes
	// healthy first.
	ProgressDeadline *time.Time `json:"progress_deadline,omitempty"`
	EndedAt          *time.Time `json:"ended_at,omitempty"`
}

// NeedsPromotion reports whether the deployment waits for `orch job promote`.
func (d *Deployment) NeedsPromotion() bool {
	return d != nil && d.State == DeploymentRunning && d.Canaries > 0 && !d.Promoted
}

// JobTaskName is the name of a job's task at index i: JOB.i.
func JobTaskName(job string, index int) string {
	return job + "." + strconv.Itoa(index)
}

// ConstraintNodeName is the constraint key that matches a node's name
// rather than one of its labels, like Nomad's ${node.unique.name}: a system
// job pins each of its tasks to its node with it.
const ConstraintNodeName = "node.name"

// LabelDatacenter is the node label that holds the node's datacenter
// (orch agent --datacenter), which a job's datacenters are matched against.
const LabelDatacenter = "dc"

// DefaultDatacenter is the datacenter of an agent started without
// --datacenter.
const DefaultDatacenter = "dc1"

// JobSummary is a job with the counts of its tasks by state and its latest
// deployment: a line of orch job list, the head of orch job status.
type JobSummary struct {
	Job
	Counts     map[State]int `json:"counts"`
	Deployment *Deployment   `json:"deployment,omitempty"`
}

// Endpoint is a row of the report_job_endpoints view: where a running copy
// of a job is and whether to send it traffic.
type Endpoint struct {
	Job           string     `json:"job"`
	Version       int        `json:"version"`
	TaskID        string     `json:"task_id"`
	Task          string     `json:"task"`
	Node          string     `json:"node"`
	NodeAddress   string     `json:"node_address"`
	HostPort      *int       `json:"host_port,omitempty"`
	ContainerPort *int       `json:"container_port,omitempty"`
	Protocol      string     `json:"protocol"`
	Health        TaskHealth `json:"health,omitempty"`
	Healthy       bool       `json:"healthy"`
}
