package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	mux.HandleFunc("GET /nodes", listed(c, c.store.ListNodes))
	mux.HandleFunc("GET /nodes/{node}", named(c, http.StatusOK, "node", c.store.GetNode))
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

// createTask is POST /tasks: one task, or an array of up to
// postgres.MaxBatch, stored in one transaction. The answer has the shape
// of the request: a CreatedTask or an array of them, in its order.
func (c *Coordinator) createTask(w http.ResponseWriter, r *http.Request) {
	items, array, err := DecodeTasks(http.MaxBytesReader(w, r.Body, MaxBatchBodyBytes+1))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	// Every element is checked before any is stored: a batch is all or
	// nothing.
	batch := make([]postgres.NewTask, len(items))
	for i, it := range items {
		privileged, mounts := "a privileged or host-network task", "a task with host mounts"
		if array {
			privileged = fmt.Sprintf("task [%d], privileged or on the host network,", i)
			mounts = fmt.Sprintf("task [%d], with host mounts,", i)
		}
		if it.Spec.NeedsPrivileges() && scopeOf(r.Context()) < ScopeAdmin {
			forbid(w, scopeOf(r.Context()), privileged, ScopeAdmin)
			return
		}
		if it.Spec.HostMounts() && scopeOf(r.Context()) < ScopeAdmin {
			forbid(w, scopeOf(r.Context()), mounts, ScopeAdmin)
			return
		}
		if batch[i], err = c.sealed(it); err != nil {
			if array {
				err = elemError(i, err)
			}
			c.writeError(w, r, err)
			return
		}
	}
	// Quiet: this replica's own scheduling loop places the tasks (poke),
	// without a NOTIFY that would wake every agent's connection. A create
	// sent again with the ids the client chose (its first answer was
	// lost) gets the tasks it made: 200 instead of 201.
	tasks, created, err := c.store.SubmitTasks(r.Context(), batch, postgres.CreateOpts{Quiet: true})
	if err != nil {
		if ie := (*queue.ItemError)(nil); !array && errors.As(err, &ie) {
			err = ie.Err
		}
		c.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if slices.Contains(created, true) {
		c.poke()
		status = http.StatusCreated
	}
	answers := make([]CreatedTask, len(tasks))
	warnings := map[queue.Resources]string{} // one look at the cluster per size
	for i, t := range tasks {
		answers[i].Task = t
		res := items[i].Spec.Resources
		if res.CPUMillis <= 0 && res.MemoryBytes <= 0 && res.DiskBytes <= 0 {
			continue
		}
		warn, seen := warnings[res]
		if !seen {
			// Accepted all the same (a node that large may join), but
			// say so.
			fit, err := c.store.ClusterFit(r.Context(), res)
			if err != nil {
				c.log.Warn("checking the cluster's capacity", "err", err)
			} else {
				warn = fit.Warning(res)
			}
			warnings[res] = warn
		}
		if warn != "" {
			answers[i].Warnings = []string{warn}
		}
	}
	if array {
		writeJSON(w, status, answers)
		return
	}
	writeJSON(w, status, answers[0])
}

// sealed is the task to store for it: its secrets, if any, sealed with the
// cluster's key for the task's id (chosen here if the client did not).
func (c *Coordinator) sealed(it DecodedTask) (postgres.NewTask, error) {
	nt := postgres.NewTask{ID: it.ID, Spec: it.Spec}
	if len(it.Spec.Secrets) == 0 {
		return nt, nil
	}
	if c.opts.SecretsKey == nil {
		return nt, queue.Invalid("secrets", "this cluster keeps no secrets: its coordinators have no secrets key",
			"start the coordinators and agents with --secrets-key-file (orch dev makes one), or pass the values as env")
	}
	if nt.ID == uuid.Nil {
		nt.ID = uuid.Must(uuid.NewV7())
	}
	var err error
	nt.SealedSecrets, err = c.opts.SecretsKey.Seal(nt.ID, it.Spec.Secrets)
	return nt, err
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
	c.reply(w, r, http.StatusOK, nonNil(tasks), err)
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
	d, err := c.taskDetail(r.Context(), id)
	c.reply(w, r, http.StatusOK, d, err)
}

// taskDetail is a task with its events and its latest measured usage, as
// GET /tasks/{id} answers it and the task page shows it.
func (c *Coordinator) taskDetail(ctx context.Context, id uuid.UUID) (TaskDetail, error) {
	t, err := c.store.GetTask(ctx, id)
	if err != nil {
		return TaskDetail{}, err
	}
	evs, err := c.store.Events(ctx, id)
	if err != nil {
		return TaskDetail{}, err
	}
	usage, err := c.store.TaskUsage(ctx, id)
	return TaskDetail{Task: t, Events: evs, Usage: usage}, err
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

func (c *Coordinator) cordon(on bool) http.HandlerFunc {
	return named(c, http.StatusOK, "node", func(ctx context.Context, node string) (queue.Node, error) {
		return c.store.SetCordoned(ctx, node, on)
	})
}
