package agent

import (
	"context"
	"fmt"
	"time"
)

// Self-fencing. A node cut off from the database is declared down after the
// node-down timeout and its tasks are placed elsewhere, while its containers
// keep running until its agent is back in touch. For most tasks that is
// right (a database outage silences every agent, and nothing should stop
// then); a task that must never run beside its replacement sets
// stop_after_disconnect, and its agent stops it once it has gone that long
// without a successful heartbeat — before the cluster can have moved it,
// when the setting is below the node-down timeout. As Nomad's
// disconnect.stop_on_client_after, it is the task's choice.

// touched records a successful heartbeat.
func (a *Agent) touched() { a.lastContact.Store(int64(time.Since(a.epoch))) }

// outOfTouch is how long ago a heartbeat last went through.
func (a *Agent) outOfTouch() time.Duration {
	return time.Since(a.epoch) - time.Duration(a.lastContact.Load())
}

// wakeFence asks the fence's timer to look again: a task that may fence
// itself is being watched.
func (a *Agent) wakeFence() {
	select {
	case a.fenceWake <- struct{}{}:
	default:
	}
}

// fenceLoop runs the self-fencing on a timer of its own. It must not wait
// for a heartbeat to fail: in a silent partition (packets dropped, not
// refused) a heartbeat hangs until its deadline, and the task must stop on
// time regardless. The silence counts from the last heartbeat that went
// through, as the cluster counts it, but only once a later one has been
// sent and not answered. While one is outstanding the timer is set for the
// moment the first watched task would be due; a beat that goes through
// meanwhile only makes the timer find nothing due.
func (a *Agent) fenceLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := a.fenceCutOff(ctx)
		if next <= 0 {
			next = time.Hour
		}
		t.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.fenceWake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
	}
}

// fenceCutOff stops the containers of the tasks that asked to be stopped
// after the silence the agent has had, and returns how long until the next
// one would be due (0: none watched). Their exits are recorded once the
// database is back: the task goes back to the queue, unless the cluster
// moved it meanwhile (then the write is refused and the container removed).
func (a *Agent) fenceCutOff(ctx context.Context) (next time.Duration) {
	if !a.asking.Load() {
		return 0 // nothing asked since the last answer: nothing to count
	}
	silence := a.outOfTouch()
	var stop []string
	a.mu.Lock()
	for _, w := range a.watched {
		if w.stopAfterDisconnect <= 0 || w.disconnected != "" || w.lost {
			continue
		}
		if due := w.stopAfterDisconnect - silence; due > 0 {
			if next == 0 || due < next {
				next = due
			}
			continue
		}
		w.disconnected = fmt.Sprintf("its agent lost touch with the database for %s (stop_after_disconnect %s)",
			silence.Round(100*time.Millisecond), w.stopAfterDisconnect)
		stop = append(stop, w.containerID)
	}
	a.mu.Unlock()
	for _, id := range stop {
		a.log.Warn("out of touch with the database: stopping a task that asked for it", "container", id, "for", silence.Round(time.Millisecond))
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.stopContainer(ctx, id) }()
	}
	return next
}
