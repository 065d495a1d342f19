package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// ContainerName is a task attempt's container name, readable in `docker ps`
// and unique per attempt. Task ids are UUIDv7: their head is a timestamp,
// the same for every task created within a minute, so the name takes the
// random tail instead.
func ContainerName(t *queue.Task) string {
	short := queue.ShortID(t.ID)
	if t.Name == "task-"+short { // the default name says nothing the id does not
		return fmt.Sprintf("orch-%s-%d", short, t.Attempt)
	}
	return fmt.Sprintf("orch-%s-%s-%d", t.Name, short, t.Attempt)
}

// specFor turns a claimed task into what the runtime needs.
func (a *Agent) specFor(t *queue.Task) ContainerSpec {
	labels := map[string]string{
		LabelTask:    t.ID.String(),
		LabelNode:    a.node.ID.String(),
		LabelAttempt: strconv.Itoa(t.Attempt),
		LabelName:    t.Name,
	}
	return ContainerSpec{
		RegistryAuth: a.registryAuth(t),
		Name:         ContainerName(t),
		Image:        t.Image,
		Command:      t.Command,
		Env:          t.Env,
		CPUMillis:    t.Resources.CPUMillis,
		MemoryBytes:  t.Resources.MemoryBytes,
		Ports:        t.Ports,
		Labels:       labels,
		Privileged:   t.Privileged,
		Network:      t.Network,
		PidsLimit:    a.pidsLimit(t),
		Mounts:       t.Volumes,
		LogMaxBytes:  a.opts.ContainerLogMaxBytes,
		LogMaxFiles:  a.opts.ContainerLogMaxFiles,
	}
}

// start runs a claimed task's container and begins watching it. A start
// that fails is the task's failure (its restart policy decides what
// follows), unless the engine itself is down: then the task was never tried,
// and it goes back to the queue for another node, the node being reported
// unhealthy first.
func (a *Agent) start(ctx context.Context, t queue.Task) {
	lease := t.Lease()
	if t.NeedsPrivileges() && !a.opts.AllowPrivileged {
		// The scheduler does not place such tasks here; this is the last line.
		a.write(ctx, "refusing a privileged task", func(ctx context.Context) error {
			_, err := a.recordExitOf(ctx, lease, postgres.ExitReport{StartFailed: true,
				Error: "node " + a.node.Name + " does not allow privileged containers or the host network (start its agent with --allow-privileged)"})
			return err
		})
		return
	}
	mounts, err := a.hostMounts(&t)
	if err != nil {
		a.write(ctx, "refusing a task's host mounts", func(ctx context.Context) error {
			_, err := a.recordExitOf(ctx, lease, postgres.ExitReport{StartFailed: true, Error: err.Error()})
			return err
		})
		return
	}
	spec := a.specFor(&t)
	spec.Mounts = mounts
	if len(t.SecretKeys) > 0 {
		env, err := a.withSecrets(ctx, &t, spec.Env)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("cannot give a task its secrets", "task", t.ID, "err", err)
			a.write(ctx, "recording start failure", func(ctx context.Context) error {
				_, err := a.recordExitOf(ctx, lease, postgres.ExitReport{StartFailed: true, Error: err.Error(), Backoff: a.opts.RestartBackoff})
				return err
			})
			return
		}
		spec.Env = env
	}
	id, err := a.rt.Start(ctx, spec)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down; the claim stays starting and is resumed on restart
		}
		if a.engineDown(ctx, err) {
			a.log.Warn("docker engine is down; handing the task back", "task", t.ID, "err", err)
			a.write(ctx, "handing a task back", func(ctx context.Context) error {
				return a.requeue(ctx, lease, "lost: docker engine on node "+a.node.Name+" failed: "+err.Error())
			})
			return
		}
		if errors.Is(err, ErrImage) {
			a.engine.imageFailed(err)
		}
		a.log.Warn("container failed to start", "task", t.ID, "err", err)
		a.obs.metrics.startFailures.Inc()
		a.write(ctx, "recording start failure", func(ctx context.Context) error {
			_, err := a.recordExitOf(ctx, lease, postgres.ExitReport{StartFailed: true, Error: err.Error(), Backoff: a.opts.RestartBackoff})
			return err
		})
		return
	}
	a.engine.started()
	a.obs.metrics.starts.Inc()
	a.watch(ctx, &t, id, true)
}

// localTime turns a time the database stamped into the agent's clock.
func (a *Agent) localTime(db time.Time) time.Time {
	return db.Add(-time.Duration(a.clockSkew.Load()))
}

// withSecrets returns env with the task's secrets added, read from the
// database and opened with the cluster's key. Its errors name no value.
func (a *Agent) withSecrets(ctx context.Context, t *queue.Task, env map[string]string) (map[string]string, error) {
	if a.opts.SecretsKey == nil {
		return nil, fmt.Errorf("node %s has no secrets key: start its agent with --secrets-key-file (the coordinators' key)", a.node.Name)
	}
	var sealed []byte
	var moved error
	err := retry(ctx, a.log, "reading a task's secrets", func(ctx context.Context) error {
		var err error
		sealed, err = a.store.TaskSecrets(ctx, t.Lease())
		if errors.Is(err, queue.ErrNotOwner) {
			moved = err // the start's own writes will be refused too
			return nil
		}
		return err
	})
	if err == nil {
		err = moved
	}
	if err != nil {
		return nil, err
	}
	values, err := a.opts.SecretsKey.Open(t.ID, sealed)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(env)+len(values))
	for k, v := range env {
		out[k] = v
	}
	for k, v := range values {
		out[k] = v
	}
	return out, nil
}

// write runs a fenced write until it is done: it succeeded, or it was
// refused because the task is no longer this attempt's (nothing to do
// then), or ctx ended. The database may be away for a while; whatever the
// agent saw meanwhile is written when it is back.
func (a *Agent) write(ctx context.Context, what string, fn func(context.Context) error) (refused error) {
	_ = retry(ctx, a.log, what, func(ctx context.Context) error {
		err := fn(ctx)
		if errors.Is(err, queue.ErrNotOwner) || errors.Is(err, queue.ErrInvalidTransition) || errors.Is(err, queue.ErrNotFound) {
			refused = err
			return nil
		}
		return err
	})
	return refused
}

// watch follows a container of the task's current attempt until it exits
// and records the exit. With markRunning it first records that the
// container runs (the task is still starting in the database). A task with a
// health check is probed meanwhile.
func (a *Agent) watch(ctx context.Context, t *queue.Task, containerID string, markRunning bool) {
	lease := t.Lease()
	a.mu.Lock()
	if _, ok := a.watched[lease]; ok {
		a.mu.Unlock()
		return
	}
	w := &watch{lease: lease, containerID: containerID, stopAfterDisconnect: time.Duration(t.StopAfterDisconnect)}
	a.watched[lease] = w
	a.mu.Unlock()
	if w.stopAfterDisconnect > 0 {
		a.wakeFence()
	}
	hc := t.HealthCheck
	started := time.Now()
	if !markRunning && t.StartedAt != nil {
		started = a.localTime(*t.StartedAt)
	}
	unwatch := func() {
		a.mu.Lock()
		delete(a.watched, lease)
		a.mu.Unlock()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if markRunning {
			refused := a.write(ctx, "recording running", func(ctx context.Context) error {
				return a.markRunning(ctx, lease, containerID)
			})
			if ctx.Err() != nil {
				unwatch()
				return
			}
			if refused != nil {
				a.log.Info("task moved away while starting; removing its container", "task", lease.TaskID, "err", refused)
				a.mu.Lock()
				w.lost = true
				a.mu.Unlock()
				a.discard(ctx, containerID)
				unwatch()
				return
			}
		}
		a.recordHostPorts(ctx, t, containerID)
		a.shipLogs(ctx, lease, containerID) // in its own goroutine: never in the way of the start
		// The wait, which lasts as long as the container, gets a goroutine
		// of its own: this one's stack grew deep in the database driver,
		// and a node holds hundreds of waits (2 KB each instead of 8).
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer unwatch()
			a.await(ctx, w, hc, started)
		}()
	}()
}

// await waits for a watched container to exit, probing its health
// meanwhile, and records the exit.
func (a *Agent) await(ctx context.Context, w *watch, hc *queue.HealthCheck, started time.Time) {
	lease, containerID := w.lease, w.containerID
	wctx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	if hc != nil {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.probe(wctx, w, *hc, started) }()
	}
	exit, err := a.rt.Wait(ctx, containerID)
	stopProbe()
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("waiting for container", "task", lease.TaskID, "err", err)
			// The engine failed or the container vanished: look again
			// once the engine answers.
			a.reconcileNeeded.Store(true)
		}
		return
	}
	a.mu.Lock()
	st := *w
	a.mu.Unlock()
	if st.lost {
		a.discard(ctx, containerID)
		return
	}
	a.recordExit(ctx, lease, containerID, exit, &st)
}

// recordExit writes how a container ended — and so what follows under the
// task's restart policy — then removes it. The write is retried while the
// database is away; the container is kept until the exit is recorded, so
// nothing is lost if the agent dies meanwhile.
func (a *Agent) recordExit(ctx context.Context, lease queue.Lease, containerID string, exit Exit, w *watch) {
	r := postgres.ExitReport{Code: exit.Code, Error: exit.Error, Backoff: a.opts.RestartBackoff}
	if exit.OOMKilled {
		r.Error = "killed: out of memory"
	}
	if w != nil {
		r.Stopped, r.Evicted = w.stopping, w.evicting
		if w.unhealthy != "" {
			r.Unhealthy, r.Error = true, w.unhealthy
		}
		if w.disconnected != "" {
			r.Disconnected, r.Error = true, w.disconnected
		}
	}
	// The container has ended: the lease ends with the write below, by the
	// agent's own doing, and a lease check meanwhile must not take the task
	// for moved away (if it was, the write is refused all the same).
	a.mu.Lock()
	if cur, ok := a.watched[lease]; ok {
		cur.ended = true
	}
	a.mu.Unlock()
	// The last lines go in before the end is recorded: a reader that sees
	// the task ended has all of its output, and the lease still holds.
	a.flushLogs(ctx, lease, containerID)
	refused := a.write(ctx, "recording exit", func(ctx context.Context) error {
		to, err := a.recordExitOf(ctx, lease, r)
		if err == nil {
			a.obs.metrics.exits.WithLabelValues(string(to)).Inc()
		}
		return err
	})
	if ctx.Err() != nil {
		return
	}
	if refused != nil {
		a.log.Info("exit of a task this node no longer owns", "task", lease.TaskID, "err", refused)
	}
	a.discard(ctx, containerID)
}

// discard removes a container, quietly.
func (a *Agent) discard(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.StopGrace+10*time.Second)
	defer cancel()
	if err := a.rt.Stop(ctx, id, a.opts.StopGrace); err != nil {
		a.log.Warn("stopping container", "container", id, "err", err)
	}
	if err := a.rt.Remove(ctx, id); err != nil {
		a.log.Warn("removing container", "container", id, "err", err)
	}
}

// handleStops carries out the stop requests for this node's tasks.
func (a *Agent) handleStops(ctx context.Context) error {
	tasks, err := a.store.StopRequests(ctx, a.node.ID)
	if err != nil {
		return err
	}
	for i := range tasks {
		t := tasks[i]
		a.mu.Lock()
		w, ok := a.watched[t.Lease()]
		already := ok && w.stopping
		if ok {
			w.stopping = true
		}
		starting := a.inflight[t.ID]
		a.mu.Unlock()
		if already || starting {
			if starting {
				a.pollSoon() // a start in progress: look again soon, not at the idle poll
			}
			continue
		}
		if ok {
			// The watcher records the exit as stopped once the container is down.
			a.wg.Add(1)
			go func(id string) { defer a.wg.Done(); a.stopContainer(ctx, id) }(w.containerID)
			continue
		}
		if t.State == queue.Starting {
			a.pollSoon() // claimed before a restart of the agent, or a start in progress: look again soon
			continue
		}
		// Running in the database but not watched here: its container is
		// gone, or the engine is away (the reconcile removes the container
		// of a task that is over once it is back).
		if _, err := a.recordExitOf(ctx, t.Lease(), postgres.ExitReport{Stopped: true, Backoff: a.opts.RestartBackoff}); err != nil && !errors.Is(err, queue.ErrNotOwner) {
			return err
		}
		if t.ContainerID != "" && a.ownsContainer(ctx, t.ContainerID) {
			a.discard(ctx, t.ContainerID)
		}
	}
	return nil
}

// ownsContainer reports whether the container carries this node's label. A
// container id read from the database is checked before the agent stops it:
// orch only ever touches containers it labelled for this node.
func (a *Agent) ownsContainer(ctx context.Context, id string) bool {
	cs, err := a.rt.List(ctx, map[string]string{LabelNode: a.node.ID.String()})
	if err != nil {
		return false
	}
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	// Not ours: most often it is simply gone already (it ended and was
	// removed while the stop was on its way), which needs no warning.
	if all, err := a.rt.List(ctx, nil); err == nil && !slices.ContainsFunc(all, func(c Container) bool { return c.ID == id }) {
		return false
	}
	a.log.Warn("not touching a container without this node's label", "container", id)
	return false
}
