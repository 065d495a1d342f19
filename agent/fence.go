package agent

import (
	"context"

	"github.com/orchd/orch/queue"
)

// checkLeases lets go of the tasks that are no longer this node's. Every
// step compares the leases the agent watches with the ones the database
// gives the node; a lease that is gone was moved away — the node was declared
// down while the agent was frozen or cut off, its engine failed for too
// long, or a drain deadline passed — and another node may already run a new
// attempt. Its container is stopped and removed, and nothing is written
// about it: any write would be fenced off anyway. Noticing this while the
// containers run, not only at start, is what keeps a task from running on
// two nodes for longer than one step once the agent is back in touch.
func (a *Agent) checkLeases(ctx context.Context) error {
	tasks, err := a.store.NodeTasks(ctx, a.node.ID)
	if err != nil {
		return err
	}
	own := make(map[queue.Lease]bool, len(tasks))
	for i := range tasks {
		own[tasks[i].Lease()] = true
	}
	var lost []*watch
	a.mu.Lock()
	for l, w := range a.watched {
		if !own[l] && !w.lost && !w.ended {
			w.lost = true
			lost = append(lost, w)
		}
	}
	a.mu.Unlock()
	for _, w := range lost {
		a.log.Warn("task was moved away from this node; removing its container", "task", w.lease.TaskID, "attempt", w.lease.Attempt)
		a.removeInBackground(ctx, w.containerID)
	}
	return nil
}

// removeInBackground stops and removes a container without holding up the
// agent's loop, with at most a few removals at a time across the agent:
// after a long absence there may be many containers to remove, a flood of
// them would slow the engine for everyone, and meanwhile the agent must go
// on claiming the work placed on it. A container already being removed is
// left to that removal.
func (a *Agent) removeInBackground(ctx context.Context, id string) {
	a.mu.Lock()
	if a.removing[id] {
		a.mu.Unlock()
		return
	}
	a.removing[id] = true
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.removals <- struct{}{}
		defer func() { <-a.removals }()
		a.discard(ctx, id)
		a.mu.Lock()
		delete(a.removing, id)
		a.mu.Unlock()
	}()
}
