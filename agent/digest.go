package agent

import (
	"context"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// An idle agent's cycle. Besides its heartbeats, an agent used to ask the
// database, every safety-net interval, for work it might have missed (the
// lease check, the stop requests, a claim) and, every reconcile interval,
// for its node's tasks and volumes: five unprepared statements, which
// through a transaction pooler are parsed and planned anew each time, and
// which for a fleet of idle agents cost PostgreSQL more than their beats.
// Each heartbeat now returns what the database holds for the node
// (postgres.NodeDigest, read with the beat's cached plans), and the agent
// checks it against what it holds itself (heed):
//
//   - nothing it does not know of: the next safety-net wake-up asks nothing
//     (the main loop skips its step), and a due reconcile only lists the
//     engine's containers; if they are the ones it watches, the reconcile
//     is done without a read (quickReconcile);
//   - tasks waiting to be claimed, stop requests no one is carrying out, or
//     volumes to delete: a wake-up was missed, and the agent steps now,
//     within a beat of it rather than within a safety-net interval;
//   - leases that differ from the ones it watches: a reconcile, now.
//
// While the agent is busy (starts in flight, containers being stopped or
// removed) it keeps stepping on its timer as before. Every
// fullReconcileEvery reconcile intervals it reconciles in full anyway, and
// with its wake-up channel down it polls every PollInterval as before.

// fullReconcileEvery is how many reconcile intervals may pass with only
// quick reconciles before a full one.
const fullReconcileEvery = 10

// reconcileClock is when the main loop last reconciled, and last did so
// in full.
type reconcileClock struct{ last, lastFull time.Time }

// reconcileIfDue reconciles when one is asked for or the reconcile
// interval has passed: quickly (quickReconcile) while the last heartbeat
// found nothing new, in full otherwise and every fullReconcileEvery
// intervals. A due reconcile waits for an engine that answers (it lists
// containers, and the engine's return asks for one anyway), but no longer
// than one more interval.
func (a *Agent) reconcileIfDue(ctx context.Context, c *reconcileClock) {
	every := a.idleEvery(a.opts.ReconcileInterval)
	overdue := time.Since(c.last) >= every
	if !a.reconcileNeeded.Load() && !overdue {
		return
	}
	if a.engine.health(a.opts).EngineDown && !overdue {
		return
	}
	full := a.reconcileNeeded.Load() || time.Since(c.lastFull) >= fullReconcileEvery*every
	if !full {
		same, err := a.quickReconcile(ctx)
		full = err != nil || !same
	}
	if !full {
		a.obs.metrics.reconciles.WithLabelValues("quick").Inc()
		c.last = time.Now()
		return
	}
	a.obs.metrics.reconciles.WithLabelValues("full").Inc()
	if err := a.reconcile(ctx); err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reconciling containers failed", "err", err)
		}
	} else {
		a.reconcileNeeded.Store(false)
	}
	c.last = time.Now()
	c.lastFull = c.last
	a.volumesDue.Store(true)
}

// heed compares the node's digest from a heartbeat with what the agent
// holds, and records whether the two agree (quiet), asking for a step or a
// reconcile when they do not.
func (a *Agent) heed(d postgres.NodeDigest) {
	held, digest, busy := a.holding()
	if d.VolumeDeletes > 0 {
		a.volumesDue.Store(true)
	}
	switch {
	case busy || !d.LeasesRead:
		// Its own steps and writes are on their way (or were when the
		// beat left, which then did not read the leases); compare next
		// time.
		a.quiet.Store(false)
	case held != d.Leases || digest != d.LeaseDigest:
		a.quiet.Store(false)
		a.reconcileNeeded.Store(true)
		a.poke()
	case d.Scheduled || d.Stops > 0 || d.VolumeDeletes > 0:
		a.quiet.Store(false)
		a.poke()
	default:
		a.quiet.Store(true)
	}
}

// busy tells whether anything is under way that the database may not show
// yet (see holding), without computing the leases' digest.
func (a *Agent) busy() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.busyLocked()
}

// busyLocked is busy for a caller that holds a.mu.
func (a *Agent) busyLocked() bool {
	if len(a.inflight) > 0 || len(a.removing) > 0 {
		return true
	}
	for _, w := range a.watched {
		if w.stopping || w.evicting || w.lost || w.ended || w.unhealthy != "" || w.disconnected != "" {
			return true
		}
	}
	return false
}

// holding returns how many leases the agent watches a running container
// for, their digest (postgres.LeaseDigest), and whether anything is under
// way that the database may not show yet: a start in flight, or a watched
// container being stopped, given up or recorded as ended.
func (a *Agent) holding() (n int, digest int64, busy bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busyLocked() {
		return 0, 0, true
	}
	for l := range a.watched {
		n++
		digest ^= postgres.LeaseDigest(l)
	}
	return n, digest, false
}

// quickReconcile is a reconcile without a read, for an agent whose last
// heartbeat found the node's leases to be the ones it watches (quiet): it
// lists this node's containers and reports whether they are exactly the
// watched ones, all running. If so a full reconcile would change nothing.
func (a *Agent) quickReconcile(ctx context.Context) (bool, error) {
	if !a.quiet.Load() {
		return false, nil
	}
	containers, err := a.rt.List(ctx, map[string]string{LabelNode: a.node.ID.String()})
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.inflight) > 0 || len(containers) != len(a.watched) {
		return false, nil
	}
	byContainer := make(map[string]queue.Lease, len(a.watched))
	for l, w := range a.watched {
		byContainer[w.containerID] = l
	}
	for _, c := range containers {
		if _, ok := byContainer[c.ID]; !ok || !c.Running {
			return false, nil
		}
	}
	return a.quiet.Load(), nil
}
