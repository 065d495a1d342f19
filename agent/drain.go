package agent

import (
	"context"
	"time"
)

// evict hands the node's tasks over while it drains: every container the
// agent watches is stopped with its grace, and its watcher records the exit
// as a move (the task goes back to pending, to be placed on another node —
// not a restart). The agent claims nothing new meanwhile. Tasks that are
// still starting are handed over at a later step, once they run.
func (a *Agent) evict(ctx context.Context) {
	var ws []*watch
	a.mu.Lock()
	for _, w := range a.watched {
		if !w.evicting && !w.stopping && !w.lost {
			w.evicting = true
			ws = append(ws, w)
		}
	}
	a.mu.Unlock()
	for _, w := range ws {
		a.log.Info("node is draining; handing the task over", "task", w.lease.TaskID)
		a.wg.Add(1)
		go func(id string) {
			defer a.wg.Done()
			a.stopContainer(ctx, id)
		}(w.containerID)
	}
}

// stopContainer asks a container to stop within the stop grace; its watcher
// sees the exit and records it.
func (a *Agent) stopContainer(ctx context.Context, containerID string) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.StopGrace+10*time.Second)
	defer cancel()
	if err := a.rt.Stop(sctx, containerID, a.opts.StopGrace); err != nil {
		a.log.Warn("stopping container", "container", containerID, "err", err)
	}
}
