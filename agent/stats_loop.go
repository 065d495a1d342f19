package agent

import (
	"context"
	"sync"
	"time"

	"github.com/orchd/orch/queue"
)

// DefaultStatsInterval is how often an agent writes its node's and its
// tasks' stats unless told otherwise.
const DefaultStatsInterval = 10 * time.Second

// statsLoop measures the machine and the containers every statsEvery and
// writes the figures to the database: the node's latest usage and its
// history, and each running task's. The node's figures go with the next
// heartbeat (beat), in its statement, so that an idle agent costs the
// database one call per interval and not two; the tasks' are written here.
// It runs beside the work loop and never holds it up; a failed write is
// retried at the next tick.
func (a *Agent) statsLoop(ctx context.Context) {
	ns := newNodeSampler(a.opts.DiskPath)
	sr, _ := a.rt.(StatsReader)
	prev := map[string]ContainerStats{}
	// The first samples are the baselines the CPU figures are measured from.
	if _, _, err := ns.sample(); err != nil {
		a.log.Warn("cannot measure this machine; node stats are off", "err", err)
		ns = nil
	}
	a.sampleTasks(ctx, sr, prev)
	repeat(ctx, a.statsEvery(), func() time.Duration {
		if ns != nil {
			if u, ok, err := ns.sample(); err != nil {
				a.log.Warn("measuring the machine", "err", err)
			} else if ok {
				a.usage.Store(&u)
			}
		}
		if samples := a.sampleTasks(ctx, sr, prev); len(samples) > 0 {
			if _, err := a.store.ReportTaskUsage(ctx, a.node.ID, samples); err != nil {
				if ctx.Err() == nil {
					a.obs.metrics.errors.WithLabelValues("stats").Inc()
					a.log.Warn("writing task stats", "err", err)
				}
			} else {
				a.obs.metrics.statsReports.Inc()
			}
		}
		return a.statsEvery()
	})
}

// statsEvery is StatsInterval, or three heartbeat intervals when the
// cluster asks for beats so slow that StatsInterval would be shorter (as
// idleEvery): in a cluster large enough to beat less often, a node's
// history row every beat was, with the beat itself, most of what an idle
// node cost the database (a row and three index entries), and a minute's
// resolution at 1,000 nodes and more is what Kubernetes' metrics-server
// keeps. Beats come at least as often as node samples (and up to a tenth
// early), so each sample goes with a beat.
func (a *Agent) statsEvery() time.Duration {
	return a.idleEvery(a.opts.StatsInterval)
}

// sampleTasks measures every container the agent watches, a few at a time,
// and returns the usage of those it had measured before (CPU is a rate
// between two samples). prev is updated to the new samples.
func (a *Agent) sampleTasks(ctx context.Context, sr StatsReader, prev map[string]ContainerStats) []queue.TaskUsage {
	if sr == nil {
		return nil
	}
	a.mu.Lock()
	watched := make([]watch, 0, len(a.watched))
	for _, w := range a.watched {
		if !w.stopping {
			watched = append(watched, *w)
		}
	}
	a.mu.Unlock()

	type result struct {
		w  watch
		st ContainerStats
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
		sem     = make(chan struct{}, 4)
	)
	for _, w := range watched {
		wg.Add(1)
		sem <- struct{}{}
		go func(w watch) {
			defer wg.Done()
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			st, err := sr.Stats(sctx, w.containerID)
			if err != nil || st.At.IsZero() {
				return // gone or stopping; its watcher deals with it
			}
			mu.Lock()
			results = append(results, result{w, st})
			mu.Unlock()
		}(w)
	}
	wg.Wait()

	seen := make(map[string]bool, len(results))
	var out []queue.TaskUsage
	for _, r := range results {
		seen[r.w.containerID] = true
		if p, ok := prev[r.w.containerID]; ok {
			out = append(out, queue.TaskUsage{TaskID: r.w.lease.TaskID, Attempt: r.w.lease.Attempt, At: r.st.At,
				CPUPercent: cpuPercent(p, r.st), MemoryUsedBytes: r.st.MemoryUsedBytes, MemoryLimitBytes: r.st.MemoryLimitBytes})
		}
		prev[r.w.containerID] = r.st
	}
	for id := range prev {
		if !seen[id] {
			delete(prev, id)
		}
	}
	return out
}
