package coordinator

import (
	"context"
	"time"
)

// The sweeper keeps the cluster honest about its nodes. Every replica runs
// one; each of its steps is one idempotent transaction, so replicas racing
// each other, or one killed halfway, leave nothing half done:
//
//  1. a node whose agent has not heartbeated for NodeDownTimeout is marked
//     down;
//  2. the live tasks of a node that is down, whose engine has been failing
//     for longer than NodeDownTimeout, or that is draining past its
//     deadline, go back to pending (each with an event saying why) and are
//     placed on other nodes by the next scheduling pass — whatever their
//     restart policy: losing a node is not the task's own end;
//  3. the heartbeat interval is scaled to the number of live nodes, so that
//     the cluster beats at most MaxHeartbeatsPerSecond, but no longer than
//     MaxHeartbeatInterval (a node's allowed silence grows with the
//     interval it was given, and that bounds how long a lost node goes
//     unnoticed).
//
// The agent of such a node, if it comes back, finds that its leases are gone
// and removes the containers (see agent.checkLeases).

// sweepInterval is how often the sweeper looks: a fifth of the timeout, so a
// silent node is noticed within 1.2 timeouts, within [100ms, 2s].
func (c *Coordinator) sweepInterval() time.Duration {
	return min(max(c.opts.NodeDownTimeout/5, 100*time.Millisecond), 2*time.Second)
}

// sweepLoop runs the sweeper until ctx ends.
//
// A replica declares nodes down only once it has itself been in touch with
// the database for a whole timeout: if the database was unreachable, the
// agents could not heartbeat either, and their silence says nothing about
// them. Any call of the replica's store that found the database away counts,
// also one the store retried until it went through (Store.LastAway). (The
// store adds the same rule for a database server that restarted or a
// standby that was promoted.)
func (c *Coordinator) sweepLoop(ctx context.Context) {
	var connectedSince time.Time
	t := time.NewTicker(c.sweepInterval())
	defer t.Stop()
	for {
		now := time.Now()
		if connectedSince.IsZero() {
			connectedSince = now
		}
		if away := c.store.LastAway(); away.After(connectedSince) {
			connectedSince = away
		}
		mayMarkDown := now.Sub(connectedSince) >= c.opts.NodeDownTimeout
		if err := c.Sweep(ctx, mayMarkDown); err != nil {
			connectedSince = time.Time{}
			if ctx.Err() == nil {
				c.log.Warn("sweeping nodes failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep runs one round of the sweeper: it marks silent nodes down (when
// markDown is set) and moves the tasks of every node that must give them up.
func (c *Coordinator) Sweep(ctx context.Context, markDown bool) error {
	timeout := c.opts.NodeDownTimeout
	if markDown {
		down, err := c.store.MarkSilentNodesDown(ctx, timeout)
		if err != nil {
			return err
		}
		for _, n := range down {
			c.log.Warn("node is down: no heartbeat", "node", n.Name, "last_heartbeat", n.LastHeartbeat, "timeout", timeout)
		}
	}
	rate := max(c.opts.MaxHeartbeatsPerSecond, 0)
	if p, changed, err := c.store.UpdateHeartbeatPolicy(ctx, rate, c.opts.MaxHeartbeatInterval); err != nil {
		return err
	} else if changed {
		// It is a floor: agents whose own interval is longer keep theirs.
		c.log.Info("heartbeat policy: agents beat no more often than every", "interval", p.Interval, "live_nodes", p.LiveNodes,
			"max_heartbeats_per_second", rate, "max_heartbeat_interval", c.opts.MaxHeartbeatInterval)
	}
	nodes, err := c.store.NodesToEvacuate(ctx, timeout)
	if err != nil {
		return err
	}
	for _, id := range nodes {
		moved, why, err := c.store.EvacuateNode(ctx, id, timeout)
		if err != nil {
			return err
		}
		if moved > 0 {
			c.log.Warn("moved tasks off a node", "node", id, "tasks", moved, "why", why)
			c.poke() // place them now rather than at the next interval
		}
	}
	return nil
}
