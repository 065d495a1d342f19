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

// touched records a successful round trip with the database.
func (a *Agent) touched() { a.lastContact.Store(time.Now().UnixNano()) }

// outOfTouch is how long ago the agent last heard from the database.
func (a *Agent) outOfTouch() time.Duration {
	return time.Since(time.Unix(0, a.lastContact.Load()))
}

// fenceCutOff stops the containers of the tasks that asked to be stopped
// after the silence the agent has had. Their exits are recorded once the
// database is back: the task goes back to the queue, unless the cluster
// moved it meanwhile (then the write is refused and the container removed).
func (a *Agent) fenceCutOff(ctx context.Context) {
	silence := a.outOfTouch()
	var stop []string
	a.mu.Lock()
	for _, w := range a.watched {
		if w.stopAfterDisconnect <= 0 || silence < w.stopAfterDisconnect || w.disconnected != "" || w.lost {
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
}
