package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/orchd/orch/queue/postgres"
)

// engineHealth is what the agent knows about its container engine: whether
// the last ping answered, and how many image pulls have failed in a row. A
// node whose engine fails is reported unhealthy with every heartbeat, so the
// scheduler sends new work (and restarts) elsewhere instead of into a broken
// engine, and the sweeper moves its tasks if it stays so for long.
type engineHealth struct {
	mu          sync.Mutex
	pingFails   int       // failed pings in a row
	firstFail   time.Time // when the first of them began
	pingErr     error     // set once the engine counts as down
	downSince   time.Time // when the engine was first seen failing, while it is
	failedAt    time.Time // when a request last failed outside of a ping
	imageStreak int
	imageErr    error
	imageAt     time.Time
}

// pingTimeout bounds one ping. It is generous on purpose: an engine that
// is slow because it is busy is not a dead one, and declaring it dead would
// move its tasks onto the others — more load, more slow engines.
const pingTimeout = 5 * time.Second

// pingsToFail is how many failed pings in a row make the engine count as
// down, for the same reason. A failed start followed by a failed ping
// counts at once (engineDown).
const pingsToFail = 2

// check pings the engine and records the result; it reports whether the
// engine came back from failing.
func (e *engineHealth) check(ctx context.Context, rt Runtime) (recovered bool) {
	began := time.Now()
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	err := rt.Ping(pctx)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil && began.Before(e.failedAt) {
		return false // a failure seen since this ping began is newer news
	}
	recovered = e.pingErr != nil && err == nil
	if err != nil {
		if e.pingFails++; e.pingFails == 1 {
			e.firstFail = began
		}
		if e.pingFails < pingsToFail {
			return false
		}
		began = e.firstFail
	}
	e.setPing(err, began)
	return recovered
}

// setPing records the engine's answer (err nil) or failure, seen at.
func (e *engineHealth) setPing(err error, at time.Time) {
	switch {
	case err == nil:
		e.downSince, e.pingFails = time.Time{}, 0
	case e.pingErr == nil:
		e.downSince = at
	}
	e.pingErr = err
}

// failed records that the engine failed a request: it is down until a ping
// answers again.
func (e *engineHealth) failed(err error) {
	e.mu.Lock()
	e.failedAt = time.Now()
	e.setPing(err, e.failedAt)
	e.mu.Unlock()
}

// imageFailed records a failed image pull.
func (e *engineHealth) imageFailed(err error) {
	e.mu.Lock()
	e.imageStreak++
	e.imageErr, e.imageAt = err, time.Now()
	e.mu.Unlock()
}

// started records that a container started: pulls work (or were not needed).
func (e *engineHealth) started() {
	e.mu.Lock()
	e.imageStreak = 0
	e.mu.Unlock()
}

// health is what the node reports with its heartbeat.
func (e *engineHealth) health(o Options) postgres.NodeHealth {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pingErr != nil {
		return postgres.NodeHealth{Problem: "docker engine does not answer: " + e.pingErr.Error(),
			EngineDown: true, EngineDownFor: time.Since(e.downSince)}
	}
	if e.imageStreak >= o.ImageFailures && time.Since(e.imageAt) < o.ImageCooloff {
		return postgres.NodeHealth{Problem: fmt.Sprintf("%d image pulls failed in a row, the last: %v", e.imageStreak, e.imageErr)}
	}
	return postgres.NodeHealth{}
}

// engineLoop pings the engine every heartbeat interval. When it comes back
// after failing, the agent reconciles: watches broke while it was away, and
// containers of tasks moved meanwhile are to be removed.
func (a *Agent) engineLoop(ctx context.Context) {
	every := a.opts.HeartbeatInterval
	repeat(ctx, every, func() time.Duration {
		if a.engine.check(ctx, a.rt) {
			a.log.Info("docker engine answers again; reconciling")
			a.reconcileNeeded.Store(true)
			a.poke()
		}
		return every
	})
}

// engineDown tells whether a failed start was the engine's fault: it pings
// the engine, and if that fails too the node is reported unhealthy at once
// (before the task is handed back, so that the scheduler does not place it
// here again).
func (a *Agent) engineDown(ctx context.Context, startErr error) bool {
	if errors.Is(startErr, ErrImage) {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	err := a.rt.Ping(pctx)
	cancel()
	if err == nil || ctx.Err() != nil {
		return false
	}
	a.engine.failed(err)
	a.beat(ctx)
	return true
}
