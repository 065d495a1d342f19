package coordinator

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// GET /tasks answers the newest DefaultListLimit tasks unless limit= says
// otherwise, and never more than MaxListLimit: one request of a read token
// must not dump a whole history.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 10000
)

// TaskDetail is GET /tasks/{id}: the task and its history.
type TaskDetail struct {
	queue.Task
	Events []queue.Event `json:"events"`
	// Usage is the latest measured usage of the task's container, if any.
	Usage *queue.TaskUsage `json:"usage,omitempty"`
}

// CreatedTask is POST /tasks's answer: the stored task, and warnings about
// it (a request no node in the cluster could ever hold).
type CreatedTask struct {
	queue.Task
	Warnings []string `json:"warnings,omitempty"`
}

// Handler is the coordinator's HTTP API.
func (c *Coordinator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", c.healthz)
	mux.HandleFunc("POST /tasks", c.createTask)
	mux.HandleFunc("GET /tasks", c.listTasks)
	mux.HandleFunc("GET /tasks/{id}", c.getTask)
	mux.HandleFunc("DELETE /tasks/{id}", c.deleteTask)
	mux.HandleFunc("GET /nodes", c.listNodes)
	mux.HandleFunc("GET /nodes/{node}", c.getNode)
	mux.HandleFunc("GET /nodes/{node}/wake", c.nodeWake)
	mux.HandleFunc("POST /nodes/{node}/cordon", c.cordon(true))
	mux.HandleFunc("POST /nodes/{node}/uncordon", c.cordon(false))
	mux.HandleFunc("POST /nodes/{node}/drain", c.drainNode)
	c.observabilityRoutes(mux)
	c.jobRoutes(mux)
	c.volumeRoutes(mux)
	c.registryRoutes(mux)
	return c.instrument(mux, c.withAuth(guardChanges(mux)))
}

func (c *Coordinator) healthz(w http.ResponseWriter, r *http.Request) {
	if err := c.store.Ping(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: "database unreachable: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (c *Coordinator) createTask(w http.ResponseWriter, r *http.Request) {
	id, spec, err := DecodeTask(http.MaxBytesReader(w, r.Body, MaxBodyBytes+1))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if spec.NeedsPrivileges() && scopeOf(r.Context()) < ScopeAdmin {
		forbid(w, scopeOf(r.Context()), "a privileged or host-network task", ScopeAdmin)
		return
	}
	if spec.HostMounts() && scopeOf(r.Context()) < ScopeAdmin {
		forbid(w, scopeOf(r.Context()), "a task with host mounts", ScopeAdmin)
		return
	}
	// Quiet: this replica's own scheduling loop places the task (poke),
	// without a NOTIFY that would wake every agent's connection.
	opts := postgres.CreateOpts{Quiet: true}
	if len(spec.Secrets) > 0 {
		if c.opts.SecretsKey == nil {
			c.writeError(w, r, queue.Invalid("secrets", "this cluster keeps no secrets: its coordinators have no secrets key",
				"start the coordinators and agents with --secrets-key-file (orch dev makes one), or pass the values as env"))
			return
		}
		if id == uuid.Nil {
			id = uuid.Must(uuid.NewV7())
		}
		if opts.SealedSecrets, err = c.opts.SecretsKey.Seal(id, spec.Secrets); err != nil {
			c.writeError(w, r, err)
			return
		}
	}
	// A create sent again with the id the client chose (its first answer
	// was lost) gets the task it made: 200 instead of 201.
	t, created, err := c.store.SubmitTask(r.Context(), id, spec, opts)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		c.poke()
		status = http.StatusCreated
	}
	answer := CreatedTask{Task: t}
	if res := spec.Resources; res.CPUMillis > 0 || res.MemoryBytes > 0 || res.DiskBytes > 0 {
		// Accepted all the same (a node that large may join), but say so.
		fit, err := c.store.ClusterFit(r.Context(), res)
		if err != nil {
			c.log.Warn("checking the cluster's capacity", "err", err)
		} else if warn := fit.Warning(res); warn != "" {
			answer.Warnings = append(answer.Warnings, warn)
		}
	}
	writeJSON(w, status, answer)
}

func (c *Coordinator) listTasks(w http.ResponseWriter, r *http.Request) {
	var f postgres.TaskFilter
	q := r.URL.Query()
	if s := q.Get("state"); s != "" {
		for _, part := range strings.Split(s, ",") {
			st, err := queue.ParseState(part)
			if err != nil {
				c.writeError(w, r, queue.Invalid("state", err.Error(), "use pending, scheduled, starting, running, completed, failed or stopped"))
				return
			}
			f.States = append(f.States, st)
		}
	}
	if s := q.Get("node"); s != "" {
		n, err := c.store.GetNode(r.Context(), s)
		if err != nil {
			c.writeError(w, r, err)
			return
		}
		f.NodeID = &n.ID
	}
	f.Limit = DefaultListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxListLimit {
			c.writeError(w, r, queue.Invalid("limit", fmt.Sprintf("limit %q is not a number in 1..%d", s, MaxListLimit), "use e.g. limit=100, with state= or node= to narrow the list"))
			return
		}
		f.Limit = n
	}
	tasks, err := c.store.ListTasks(r.Context(), f)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if tasks == nil {
		tasks = []queue.Task{}
	}
	writeJSON(w, http.StatusOK, tasks)
}

// taskID is the task that the route's {id} means: a full id, a name or a
// unique part of an id (postgres.Store.ResolveTask).
func (c *Coordinator) taskID(r *http.Request) (uuid.UUID, error) {
	ref := r.PathValue("id")
	if ref == "" {
		return uuid.Nil, queue.Invalid("id", "no task given", "give the task's id, a unique part of it, or its name")
	}
	return c.store.ResolveTask(r.Context(), ref)
}

func (c *Coordinator) getTask(w http.ResponseWriter, r *http.Request) {
	id, err := c.taskID(r)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	t, err := c.store.GetTask(r.Context(), id)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	evs, err := c.store.Events(r.Context(), id)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	usage, err := c.store.TaskUsage(r.Context(), id)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, TaskDetail{Task: t, Events: evs, Usage: usage})
}

func (c *Coordinator) deleteTask(w http.ResponseWriter, r *http.Request) {
	id, err := c.taskID(r)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if purge := r.URL.Query().Get("purge"); purge != "" {
		if purge != "true" {
			c.writeError(w, r, queue.Invalid("purge", fmt.Sprintf("purge=%q: only true is understood", purge), "use ?purge=true to delete a finished task's records"))
			return
		}
		if err := c.store.PurgeTask(r.Context(), id); err != nil {
			c.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	t, err := c.store.RequestStop(r.Context(), id, "stopped by user")
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	status := http.StatusAccepted
	if t.State.Terminal() {
		status = http.StatusOK
	}
	writeJSON(w, status, t)
}

func (c *Coordinator) listNodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := c.store.ListNodes(r.Context())
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if nodes == nil {
		nodes = []queue.Node{}
	}
	writeJSON(w, http.StatusOK, nodes)
}

func (c *Coordinator) getNode(w http.ResponseWriter, r *http.Request) {
	n, err := c.store.GetNode(r.Context(), r.PathValue("node"))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (c *Coordinator) cordon(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := c.store.SetCordoned(r.Context(), r.PathValue("node"), on)
		if err != nil {
			c.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, n)
	}
}
