package coordinator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// JobRunResult is the answer to POST /jobs.
type JobRunResult struct {
	Job queue.Job `json:"job"`
	// Created: the job is new; NewVersion: the spec changed (or the job is
	// new); Resumed: a stopped job runs again. An unchanged spec changes
	// nothing.
	Created    bool `json:"created"`
	NewVersion bool `json:"new_version"`
	Resumed    bool `json:"resumed,omitempty"`
}

// JobStatus is GET /jobs/{name}: the job, its counts and latest
// deployment, its tasks (live ones first), the latest events of its tasks
// and, for a periodic job, its latest instances.
type JobStatus struct {
	queue.JobSummary
	Tasks     []queue.Task       `json:"tasks"`
	Events    []queue.Event      `json:"events"`
	Instances []queue.JobSummary `json:"instances,omitempty"`
}

// ScaleRequest is the body of POST /jobs/{name}/scale.
type ScaleRequest struct {
	Count *int `json:"count"`
}

// RevertRequest is the body of POST /jobs/{name}/revert.
type RevertRequest struct {
	Version int `json:"version"`
}

// jobRoutes adds the job API to mux.
func (c *Coordinator) jobRoutes(mux *http.ServeMux) {
	// withJob lets {name} be a job's id or a unique part of it too.
	mux.HandleFunc("POST /jobs", c.runJob)
	mux.HandleFunc("GET /jobs", c.listJobs)
	mux.HandleFunc("GET /jobs/{name}", c.withJob(c.getJob))
	mux.HandleFunc("DELETE /jobs/{name}", c.withJob(c.stopJob))
	mux.HandleFunc("POST /jobs/{name}/plan", c.planJob) // a plan may be of a new job
	mux.HandleFunc("POST /jobs/{name}/scale", c.withJob(c.scaleJob))
	mux.HandleFunc("POST /jobs/{name}/revert", c.withJob(c.revertJob))
	mux.HandleFunc("POST /jobs/{name}/restart", c.withJob(c.restartJob))
	mux.HandleFunc("POST /jobs/{name}/promote", c.withJob(c.promoteJob))
	mux.HandleFunc("GET /jobs/{name}/endpoints", c.withJob(namedList(c, "name", c.store.JobEndpoints)))
	mux.HandleFunc("GET /jobs/{name}/versions", c.withJob(named(c, http.StatusOK, "name", c.store.JobVersions)))
	mux.HandleFunc("GET /jobs/{name}/deployments", c.withJob(namedList(c, "name", c.store.JobDeployments)))
}

// DecodeJob reads a job spec sent as JSON (POST /jobs and /plan): the
// same spec orch job run reads from a file, with the same validator.
func DecodeJob(r io.Reader) (queue.JobSpec, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		return queue.JobSpec{}, queue.Invalid("body", "could not read the request body", err.Error())
	}
	if len(body) > MaxBodyBytes {
		return queue.JobSpec{}, ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return queue.JobSpec{}, jsonError(err)
	}
	if dec.More() {
		return queue.JobSpec{}, queue.Invalid("body", "unexpected data after the JSON object", "send exactly one job spec")
	}
	return queue.JobSpecFromTree(tree)
}

// checkJob refuses what the caller may not submit: a job whose tasks need
// privileges without an admin token, secrets without a cluster key.
func (c *Coordinator) checkJob(w http.ResponseWriter, r *http.Request, spec queue.JobSpec) bool {
	if spec.NeedsPrivileges() && scopeOf(r.Context()) < ScopeAdmin {
		forbid(w, scopeOf(r.Context()), "a job of privileged, host-network or host-mount tasks", ScopeAdmin)
		return false
	}
	if len(spec.Task.Secrets) > 0 && c.opts.SecretsKey == nil {
		c.writeError(w, r, queue.Invalid("task.secrets", "this cluster keeps no secrets: its coordinators have no secrets key",
			"start the coordinators and agents with --secrets-key-file (orch dev makes one), or pass the values as env"))
		return false
	}
	return true
}

func (c *Coordinator) runJob(w http.ResponseWriter, r *http.Request) {
	spec, err := DecodeJob(http.MaxBytesReader(w, r.Body, MaxBodyBytes+1))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if !c.checkJob(w, r, spec) {
		return
	}
	sub := postgres.JobSubmission{Spec: spec}
	if len(spec.Task.Secrets) > 0 {
		sub.SecretsID = uuid.Must(uuid.NewV7())
		if sub.Sealed, err = c.opts.SecretsKey.Seal(sub.SecretsID, spec.Task.Secrets); err != nil {
			c.writeError(w, r, err)
			return
		}
	}
	if c.opts.SecretsKey != nil {
		sub.Open = c.opts.SecretsKey.Open
	}
	j, res, err := c.store.SubmitJob(r.Context(), sub)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	c.pokeJobs()
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, JobRunResult{Job: j, Created: res.Created, NewVersion: res.NewVersion, Resumed: res.Resumed})
}

func (c *Coordinator) listJobs(w http.ResponseWriter, r *http.Request) {
	jobs, err := c.store.ListJobs(r.Context(), postgres.JobFilter{})
	c.reply(w, r, http.StatusOK, nonNil(jobs), err)
}

// statusEvents is how many of the latest events GET /jobs/{name} shows.
const statusEvents = 20

func (c *Coordinator) getJob(w http.ResponseWriter, r *http.Request) {
	js, err := c.store.JobSummary(r.Context(), r.PathValue("name"))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	out := JobStatus{JobSummary: js}
	if out.Tasks, err = c.store.JobTasks(r.Context(), js.ID, 0); err != nil {
		c.writeError(w, r, err)
		return
	}
	if out.Events, err = c.store.JobEvents(r.Context(), js.ID, statusEvents); err != nil {
		c.writeError(w, r, err)
		return
	}
	if js.Type == queue.JobPeriodic {
		if out.Instances, err = c.store.ListJobs(r.Context(), postgres.JobFilter{Parent: &js.ID, Limit: 10}); err != nil {
			c.writeError(w, r, err)
			return
		}
	}
	if out.Tasks == nil {
		out.Tasks = []queue.Task{}
	}
	if out.Events == nil {
		out.Events = []queue.Event{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Coordinator) stopJob(w http.ResponseWriter, r *http.Request) {
	purge := false
	switch p := r.URL.Query().Get("purge"); p {
	case "", "false":
	case "true":
		purge = true
	default:
		c.writeError(w, r, queue.Invalid("purge", fmt.Sprintf("purge=%q: only true is understood", p), "use ?purge=true to delete the job once its tasks have stopped"))
		return
	}
	j, err := c.store.StopJob(r.Context(), r.PathValue("name"), purge)
	c.replyJobChange(w, r, http.StatusAccepted, j, err)
}

// decodeBody reads a small JSON body of a job action strictly.
func decodeBody(w http.ResponseWriter, r *http.Request, out any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes+1))
	if err != nil {
		return queue.Invalid("body", "could not read the request body", err.Error())
	}
	return strict(body, out)
}

func (c *Coordinator) scaleJob(w http.ResponseWriter, r *http.Request) {
	var req ScaleRequest
	if err := decodeBody(w, r, &req); err != nil {
		c.writeError(w, r, err)
		return
	}
	if req.Count == nil {
		c.writeError(w, r, queue.Invalid("count", "count is required", `send {"count": 3}`))
		return
	}
	c.changeJob(w, r, func() (queue.Job, error) { return c.store.ScaleJob(r.Context(), r.PathValue("name"), *req.Count) })
}

func (c *Coordinator) revertJob(w http.ResponseWriter, r *http.Request) {
	var req RevertRequest
	if err := decodeBody(w, r, &req); err != nil {
		c.writeError(w, r, err)
		return
	}
	if req.Version < 1 {
		c.writeError(w, r, queue.Invalid("version", "version "+strconv.Itoa(req.Version)+" is not a version", `send {"version": 2}; orch job history lists them`))
		return
	}
	c.changeJob(w, r, func() (queue.Job, error) { return c.store.RevertJob(r.Context(), r.PathValue("name"), req.Version) })
}

func (c *Coordinator) restartJob(w http.ResponseWriter, r *http.Request) {
	if err := decodeBody(w, r, &struct{}{}); err != nil {
		c.writeError(w, r, err)
		return
	}
	c.changeJob(w, r, func() (queue.Job, error) { return c.store.RestartJob(r.Context(), r.PathValue("name")) })
}

// changeJob makes a new version of a job with change and answers it.
func (c *Coordinator) changeJob(w http.ResponseWriter, r *http.Request, change func() (queue.Job, error)) {
	j, err := change()
	c.replyJobChange(w, r, http.StatusOK, JobRunResult{Job: j, NewVersion: true}, err)
}

// replyJobChange answers a change to a job as reply does and, once the
// change is made, wakes the job loop to act on it.
func (c *Coordinator) replyJobChange(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err == nil {
		c.pokeJobs()
	}
	c.reply(w, r, status, v, err)
}

func (c *Coordinator) promoteJob(w http.ResponseWriter, r *http.Request) {
	if err := decodeBody(w, r, &struct{}{}); err != nil {
		c.writeError(w, r, err)
		return
	}
	d, err := c.store.PromoteJob(r.Context(), r.PathValue("name"))
	c.replyJobChange(w, r, http.StatusOK, d, err)
}

// withJob resolves the route's {name} (a job's name, id, or a unique start
// or end of its id) to the job's name before h sees it.
func (c *Coordinator) withJob(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, err := c.store.ResolveJob(r.Context(), r.PathValue("name"))
		if err != nil {
			c.writeError(w, r, err)
			return
		}
		r.SetPathValue("name", name)
		h(w, r)
	}
}
