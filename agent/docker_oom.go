package agent

import (
	"context"
	"strconv"
	"sync"
	"time"

	dockerevents "github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// oomGrace is how long after a container's SIGKILL exit Wait waits for the
// engine's "oom" event. Docker 20.10 on cgroup v1 was seen sending it up to
// 0.9 s after "die" on a loaded 2-core machine, and then never setting the
// container's OOMKilled flag at all.
const oomGrace = 3 * time.Second

// oomForget bounds how long a container's OOM event or stop request is
// remembered: Wait asks about an exit within oomGrace of it.
const oomForget = 10 * time.Minute

// oomWatch follows the engine's "oom" events for orch's containers, because
// the OOMKilled flag of an inspected container is unreliable: when the
// kernel's OOM event reaches the engine after the exit, the flag stays false
// (seen in about one in ten OOM kills under load). What it remembers is only
// used to say why a container died; the task's state is in the database.
type oomWatch struct {
	mu       sync.Mutex
	killed   map[string]time.Time // container id → when its oom event came
	stopping map[string]time.Time // containers orch itself is stopping
	notify   chan struct{}        // closed and replaced on every oom event

	cancel context.CancelFunc
	done   chan struct{}
}

func newOOMWatch(cli *client.Client) *oomWatch {
	w := newOOMMemory()
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.follow(ctx, cli)
	return w
}

// newOOMMemory is an oomWatch that follows no engine: what it knows is
// what record and stopRequested tell it.
func newOOMMemory() *oomWatch {
	return &oomWatch{
		killed:   map[string]time.Time{},
		stopping: map[string]time.Time{},
		notify:   make(chan struct{}),
	}
}

func (w *oomWatch) close() {
	w.cancel()
	<-w.done
}

// follow subscribes to the events stream and resubscribes when it breaks
// (the engine restarting, say), asking for the events since the last one it
// saw so that none is missed across the gap.
func (w *oomWatch) follow(ctx context.Context, cli *client.Client) {
	defer close(w.done)
	f := filters.NewArgs(
		filters.Arg("type", string(dockerevents.ContainerEventType)),
		filters.Arg("event", string(dockerevents.ActionOOM)),
		filters.Arg("label", LabelTask),
	)
	since := time.Now()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		msgs, errs := cli.Events(ctx, dockerevents.ListOptions{Filters: f, Since: strconv.FormatInt(since.Unix(), 10)})
	read:
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				backoff = 100 * time.Millisecond
				if m.TimeNano > 0 {
					since = time.Unix(0, m.TimeNano)
				}
				w.record(m.Actor.ID)
			case <-errs:
				break read
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (w *oomWatch) record(id string) {
	if id == "" {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	forgetOlder(w.killed, now)
	w.killed[id] = now
	close(w.notify)
	w.notify = make(chan struct{})
}

// stopRequested notes that orch is stopping the container, so that its
// SIGKILL after the grace period is not waited on as a possible OOM kill.
func (w *oomWatch) stopRequested(id string) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	forgetOlder(w.stopping, now)
	w.stopping[id] = now
}

func (w *oomWatch) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.killed, id)
	delete(w.stopping, id)
}

// oomKilled reports whether the engine sent an oom event for the container,
// waiting for it until oomGrace after the container finished, unless orch
// itself stopped the container.
// The container may be named by more than one id (as given, and as the
// engine reports it).
func (w *oomWatch) oomKilled(ctx context.Context, finished time.Time, ids ...string) bool {
	deadline := time.NewTimer(time.Until(finished.Add(oomGrace)))
	defer deadline.Stop()
	for {
		w.mu.Lock()
		var killed, stopped bool
		for _, id := range ids {
			_, k := w.killed[id]
			_, s := w.stopping[id]
			killed, stopped = killed || k, stopped || s
		}
		notify := w.notify
		w.mu.Unlock()
		switch {
		case killed:
			return true
		case stopped:
			return false
		}
		select {
		case <-notify:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func forgetOlder(m map[string]time.Time, now time.Time) {
	for id, at := range m {
		if now.Sub(at) > oomForget {
			delete(m, id)
		}
	}
}
