package agent

import (
	"context"
	"strconv"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// reconcile takes stock: it matches the tasks the database says this node
// holds against the containers labelled with this node, and
//
//   - adopts its own (the same task and attempt) that it is not watching yet;
//   - records the exits that happened while it was not watching (the agent
//     was down, or the engine was away), with their exit codes;
//   - resumes claims it had not got to (a task starting with no container);
//   - records as gone a running task whose container has vanished;
//   - removes the orch containers that are no longer its own: their task
//     ended, or was moved to another node while this agent was away.
//
// Only containers labelled with this node's id are ever looked at, so
// several agents can share one engine, and a container without orch's
// labels is never touched. The agent runs it at start, when it learns that
// its node was declared down, when its engine comes back, and every
// ReconcileInterval; it is safe to run while the agent works, because starts
// in progress and containers already watched are left alone, and every
// write it makes is fenced by the task's lease.
func (a *Agent) reconcile(ctx context.Context) error {
	// What this process is doing, first: a start or a watch that ends while
	// the reconcile reads is then seen in its outcome by the reads below,
	// and one that begins after is guarded on its own (begin, watch).
	a.mu.Lock()
	watched := make(map[queue.Lease]bool, len(a.watched))
	watchedTask := make(map[uuid.UUID]bool, len(a.watched))
	for l, w := range a.watched {
		if !w.lost {
			watched[l] = true
			watchedTask[l.TaskID] = true
		}
	}
	inflight := make(map[uuid.UUID]bool, len(a.inflight))
	for id := range a.inflight {
		inflight[id] = true
	}
	a.mu.Unlock()
	tasks, err := a.store.NodeTasks(ctx, a.node.ID)
	if err != nil {
		return err
	}
	containers, err := a.rt.List(ctx, map[string]string{LabelNode: a.node.ID.String()})
	if err != nil {
		return err
	}

	owned := map[uuid.UUID]*queue.Task{}
	for i := range tasks {
		owned[tasks[i].ID] = &tasks[i]
	}
	found := map[uuid.UUID]bool{}
	var remove []Container
	for _, c := range containers {
		id, err := uuid.Parse(c.Labels[LabelTask])
		attempt, aerr := strconv.Atoi(c.Labels[LabelAttempt])
		if err == nil && inflight[id] {
			found[id] = true
			continue
		}
		lease := queue.Lease{TaskID: id, NodeID: a.node.ID, Attempt: attempt}
		if err == nil && aerr == nil && watched[lease] {
			found[id] = true
			continue
		}
		t, ok := owned[id]
		if err != nil || aerr != nil || !ok || t.Attempt != attempt {
			remove = append(remove, c)
			continue
		}
		found[id] = true
		a.adopt(ctx, t, c)
	}
	a.removeAll(ctx, remove)
	for i := range tasks {
		t := tasks[i]
		if found[t.ID] || watchedTask[t.ID] || inflight[t.ID] {
			continue
		}
		switch t.State {
		case queue.Starting:
			// Claimed before a crash, never started (or its start failed
			// before it could be recorded).
			if a.begin(t.ID) {
				a.wg.Add(1)
				go func() { defer a.wg.Done(); defer a.end(t.ID); a.start(ctx, t) }()
			}
		case queue.Running:
			a.log.Warn("the container of a running task is gone", "task", t.ID)
			a.write(ctx, "recording a vanished container", func(ctx context.Context) error {
				_, err := a.recordExitOf(ctx, t.Lease(), postgres.ExitReport{Code: -1,
					Error: "container disappeared while the agent was not watching", Backoff: a.opts.RestartBackoff})
				return err
			})
		}
	}
	return nil
}

// removeAll removes, in the background, the containers that are no longer
// this node's; each gets its stop grace.
func (a *Agent) removeAll(ctx context.Context, cs []Container) {
	if len(cs) == 0 {
		return
	}
	a.log.Info("removing containers whose tasks are no longer this node's", "count", len(cs))
	for _, c := range cs {
		a.log.Debug("removing a container whose task is no longer this node's", "container", c.Name)
		a.removeInBackground(ctx, c.ID)
	}
}

// adopt takes over a container of this node's current attempt of t that the
// agent is not watching: one started before the agent restarted, or whose
// watch broke while the engine was away.
func (a *Agent) adopt(ctx context.Context, t *queue.Task, c Container) {
	markRunning := t.State == queue.Starting
	if c.Running {
		a.log.Info("adopted running container", "task", t.ID, "container", c.Name)
		a.watch(ctx, t, c.ID, markRunning)
		return
	}
	a.log.Info("recording an exit that happened while the agent was not watching", "task", t.ID, "code", c.ExitCode)
	lease := t.Lease()
	if markRunning {
		if refused := a.write(ctx, "adopting container", func(ctx context.Context) error {
			return a.markRunning(ctx, lease, c.ID)
		}); refused != nil || ctx.Err() != nil {
			return
		}
	}
	w := &watch{lease: lease, containerID: c.ID, stopping: t.DesiredState == queue.DesiredStopped}
	a.recordExit(ctx, lease, c.ID, Exit{Code: c.ExitCode, Error: c.Error}, w)
}
