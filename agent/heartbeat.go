package agent

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/orchd/orch/queue"
)

// beatMinTimeout is the shortest deadline a heartbeat gets: a loaded
// database may take a second to answer, and that is not a partition.
const beatMinTimeout = 2 * time.Second

// heartbeatLoop tells the cluster that the agent is alive and whether its
// engine works, every HeartbeatInterval or at the longer interval the
// cluster asks for (a large cluster scales its heartbeats down; see
// 00008_heartbeat_policy.sql). A failed beat (the database is away) is only
// logged and retried after HeartbeatInterval: the agent's work goes on
// meanwhile, its containers keep running, and once the database is back the
// node must be heard from before it is taken for dead.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	repeat(ctx, 0, func() time.Duration { return a.beat(ctx) })
}

// beat sends one heartbeat, acts on what it learns and returns when to beat
// next: a node the cluster declared down meanwhile (the agent was frozen or
// cut off) had its tasks moved, so the agent reconciles before anything
// else; a drain that started or ended wakes the main loop.
func (a *Agent) beat(ctx context.Context) time.Duration {
	health := a.engine.health(a.opts)
	problem := health.Problem
	// The machine's latest figures, if the stats loop measured it since
	// the last beat, go with this one (statsLoop).
	health.Usage = a.usage.Swap(nil)
	// An agent with starts or stops under way will not compare the node's
	// leases with its own (heed), so the beat need not read them.
	health.Busy = a.busy()
	// A beat that gets no answer (packets dropped, not refused) must not
	// hang until the kernel gives up: it fails after at most an interval,
	// and the next one is tried. In a cluster that asks for slower beats
	// it may take up to half the cluster's interval: through a transaction
	// pooler a busy database queues beats in the pooler, and a beat given
	// up while its statement runs costs the pooler its server connection
	// (PostgreSQL then forks a new backend), which under load fed on itself.
	a.asking.Store(true)
	a.wakeFence()
	bctx, cancel := context.WithTimeout(ctx, max(a.opts.HeartbeatInterval, beatMinTimeout, time.Duration(a.beatEvery.Load())/2))
	sent := time.Now()
	r, err := a.store.Beat(bctx, a.node.ID, health, a.opts.HeartbeatInterval)
	cancel()
	if err == nil {
		// The database's clock less ours, read half way through the round trip.
		mid := sent.Add(time.Since(sent) / 2)
		a.clockSkew.Store(int64(r.DBTime.Sub(mid)))
	}
	if err != nil {
		// The next beat carries the sample, unless a newer one came.
		if health.Usage != nil {
			a.usage.CompareAndSwap(nil, health.Usage)
		}
		if ctx.Err() == nil {
			a.obs.metrics.errors.WithLabelValues("heartbeat").Inc()
			a.log.Warn("heartbeat failed", "err", err, "out of touch for", a.outOfTouch().Round(time.Millisecond))
		}
		return a.opts.HeartbeatInterval
	}
	a.touched()
	a.asking.Store(false)
	if health.Usage != nil {
		a.obs.metrics.statsReports.Inc()
	}
	if r.Was != queue.NodeReady && problem == "" {
		a.log.Info("node is ready again", "was", r.Was)
	}
	if r.Was != queue.NodeUnhealthy && problem != "" {
		a.log.Warn("node is unhealthy", "why", problem)
	}
	if r.Was == queue.NodeDown {
		a.log.Warn("the cluster declared this node down meanwhile; its tasks were moved: reconciling")
		a.reconcileNeeded.Store(true)
		a.poke()
	}
	if a.draining.Swap(r.Draining) != r.Draining {
		a.log.Info("drain", "draining", r.Draining)
		a.poke()
	}
	a.heed(r.Node)
	every := max(r.Interval, a.opts.HeartbeatInterval)
	if old := time.Duration(a.beatEvery.Swap(int64(every))); old != every && old != 0 {
		a.log.Info("heartbeat interval changed by the cluster's policy", "from", old, "to", every)
	}
	// Early by up to a tenth, never late: the fleet's beats spread out and
	// each stays within the silence its node is allowed.
	return every - time.Duration(rand.Int64N(int64(every)/10+1))
}
