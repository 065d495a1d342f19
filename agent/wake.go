package agent

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/orchd/orch/queue/postgres"
)

// DefaultIdlePollInterval is how often an agent whose notification
// connection is up looks for work anyway.
const DefaultIdlePollInterval = 30 * time.Second

// wakeState is what the main loop knows about its wake-ups.
type wakeState struct {
	listening atomic.Bool // the LISTEN connection is up
	soon      atomic.Bool // poll at PollInterval once, whatever the connection
	// quiet says the last heartbeat found nothing the agent does not know
	// of (digest.go): a safety-net wake-up then has nothing to ask.
	quiet atomic.Bool
}

// pollSoon makes the next wait a short one. It is for work that no
// notification will announce, such as a stop request for a task whose
// container is still being started.
func (a *Agent) pollSoon() { a.soon.Store(true) }

// listen holds the agent's LISTEN connection on its node channel: every
// notification wakes the main loop, and the connection's health decides how
// often the loop polls (see pollDelay). Through a transaction pooler, which
// cannot LISTEN, the agent long-polls the coordinators instead when it
// knows them (wake_poll.go), and otherwise polls every PollInterval.
func (a *Agent) listen(ctx context.Context) {
	if a.store.Pooled() {
		if len(a.opts.Coordinators) > 0 {
			a.longPoll(ctx)
			return
		}
		a.log.Warn("the database URL goes through a transaction pooler and no --coordinator is given: " +
			"the agent polls for work every --poll-interval")
	}
	a.store.ListenStatus(ctx, []string{postgres.NodeChannel(a.node.ID)},
		func(n postgres.Notification) {
			if n.Payload == "volumes" {
				a.volumesDue.Store(true)
			}
			a.poke()
		}, a.listening.Store)
}

// waitForWork returns when the agent is poked (by a notification, by the
// listener coming back, or by a heartbeat that found work), when the poll
// delay is up, or when ctx ends. It says why ("woken", or "poll"
// when the delay ran out) and whether the round may ask nothing: a
// safety-net delay ran out with the wake-up channel up, and the last
// heartbeat found nothing new (digest.go).
func (a *Agent) waitForWork(ctx context.Context) (idle bool, why string) {
	d, safetyNet := a.pollDelay()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-a.wake:
	case <-t.C:
		return safetyNet && a.listening.Load() && a.quiet.Load(), "poll"
	}
	return false, "woken"
}

// pollDelay is how long the main loop waits for a notification before it
// looks for work anyway. While the LISTEN connection is up a notification
// cannot be missed (a dropped connection is reported, and its return wakes
// the loop), so the poll is only a safety net and can be rare: a thousand
// idle agents then cost Postgres little more than their heartbeats; and
// it asks nothing at all when the last heartbeat found nothing new
// (safetyNet; see digest.go). While it is down (or after pollSoon) the
// agent polls every PollInterval. Jitter of up to a fifth keeps a fleet of
// agents from polling in step.
func (a *Agent) pollDelay() (d time.Duration, safetyNet bool) {
	d = a.opts.PollInterval
	if !a.soon.Swap(false) && a.listening.Load() {
		d, safetyNet = max(d, a.idleEvery(a.opts.IdlePollInterval)), true
	}
	return d + time.Duration(rand.Int64N(int64(d)/5+1)), safetyNet
}

// idleEvery is base, or three heartbeat intervals when the cluster asks for
// beats so slow that base would be shorter. A cluster large enough to beat
// every 20 s (1,000 nodes) then has its agents' safety-net poll and full
// reconcile come every minute instead of every 30 s: with the LISTEN
// connection's check they were most of what an idle agent asked of the
// database, more than its heartbeats.
func (a *Agent) idleEvery(base time.Duration) time.Duration {
	return max(base, 3*time.Duration(a.beatEvery.Load()))
}
