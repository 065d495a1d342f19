package queue

import (
	"fmt"
	"time"
)

// What the restart policy covers, and what it does not:
//
//   - The policy decides what happens after an attempt ends on its own: its
//     container exited, could not be started, or was killed because its
//     health check failed. never: the task ends (completed on exit 0, failed
//     otherwise). on-failure: a failed attempt is restarted. always: every
//     ended attempt is restarted. MaxRestarts bounds the restarts (0 means no
//     bound, as in Docker's on-failure); once it is reached the task ends.
//   - Losing a node is not an end of the task: its node went down, its
//     engine failed, or the node was drained. Such a task is placed again on
//     another node whatever its policy, even never, and this does not count
//     as a restart — the way Nomad and Kubernetes reschedule work lost with
//     its node. An accepted task is never silently dropped: it runs until it
//     ends by itself or a user stops it. The price, for a task whose node was
//     only cut off, is that its old container may still run until its agent
//     is back in touch with the database and removes it (fencing).
//
// Every restart goes back through the queue: the task returns to pending
// with not_before set to the end of its backoff, and the scheduler places it
// anew (often on the same node, whose room was just freed, but never on one
// that is unhealthy, cordoned or down). Waiting in the database rather than
// in an agent's memory means a restart survives the crash of any process.

// ShouldRestart reports whether an attempt of t that ended is followed by a
// restart under t's policy and the restarts it has had already; failed means
// a non-zero exit, a failed start or a failed health check.
func (t *Task) ShouldRestart(failed bool) bool {
	if t.DesiredState == DesiredStopped {
		return false
	}
	if t.MaxRestarts > 0 && t.Restarts >= t.MaxRestarts {
		return false
	}
	switch t.RestartPolicy {
	case RestartAlways:
		return true
	case RestartOnFailure:
		return failed
	}
	return false
}

// Backoff is the delay before a restart: Base before the first, doubling
// with every restart the task has had, never more than Max. An attempt that
// ran for Reset or longer starts the doubling over.
type Backoff struct {
	Base  time.Duration
	Max   time.Duration
	Reset time.Duration
}

// DefaultBackoff waits 1 s before the first restart and at most a minute,
// and starts over after 10 minutes of running (Kubernetes' crash-loop
// values).
var DefaultBackoff = Backoff{Base: time.Second, Max: time.Minute, Reset: 10 * time.Minute}

// ResetAfter is how long an attempt must run for the doubling to start over.
func (b Backoff) ResetAfter() time.Duration {
	if b.Reset <= 0 {
		return DefaultBackoff.Reset
	}
	return b.Reset
}

// Delay is the wait before the restart that follows `restarts` earlier ones
// (since the doubling last started over).
func (b Backoff) Delay(restarts int) time.Duration {
	base, ceiling := b.Base, b.Max
	if base <= 0 {
		base = DefaultBackoff.Base
	}
	if ceiling <= 0 {
		ceiling = DefaultBackoff.Max
	}
	if ceiling < base {
		ceiling = base
	}
	d := base
	for i := 0; i < restarts && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// RestartReason describes a restart for the task's history, e.g.
// "exited with code 1; restart 2 of 5 (on-failure) in 2s".
func (t *Task) RestartReason(why string, delay time.Duration) string {
	n := fmt.Sprintf("restart %d (%s, no limit)", t.Restarts+1, t.RestartPolicy)
	if t.MaxRestarts > 0 {
		n = fmt.Sprintf("restart %d of %d (%s)", t.Restarts+1, t.MaxRestarts, t.RestartPolicy)
	}
	return fmt.Sprintf("%s; %s in %s", why, n, delay.Round(time.Millisecond))
}
