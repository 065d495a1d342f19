package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orchd/orch/queue/postgres"
)

// idle measures what idle agents cost the server: the CPU time of all of
// the server's processes over a window, with n simulated agents connected,
// heartbeating, listening and polling as they do when there is no work.
func (b *bench) idle(ctx context.Context) error {
	if b.postmaster == 0 {
		return skipError{"the server's processes are not visible on this machine"}
	}
	// Only the agents: the coordinator process's periodic passes would count.
	b.stopCoordinator()
	if _, err := b.settle(ctx); err != nil {
		return err
	}
	if err := b.calibrate(ctx); err != nil {
		return err
	}
	for _, n := range b.opts.IdleAgents {
		r, err := b.idleOnce(ctx, n)
		if err != nil {
			return fmt.Errorf("%d idle agents: %w", n, err)
		}
		b.report.Idle = append(b.report.Idle, r)
	}
	return nil
}

func (b *bench) idleOnce(ctx context.Context, n int) (IdleResult, error) {
	every := b.opts.HeartbeatInterval
	if n > 0 {
		// The agents of earlier phases are gone: their nodes go down, as a
		// coordinator's sweeper would mark them, so that the heartbeat
		// policy counts this fleet only.
		if !sleepCtx(ctx, 1500*time.Millisecond) {
			return IdleResult{}, ctx.Err()
		}
		if _, err := b.store.MarkSilentNodesDown(ctx, time.Second); err != nil {
			return IdleResult{}, err
		}
		f, err := b.newFleet(ctx, fmt.Sprintf("idle%d", n), n)
		if err != nil {
			return IdleResult{}, err
		}
		defer f.stop()
		// What every coordinator's sweep does: scale the heartbeats to the
		// live nodes (the coordinator itself is stopped; see idle).
		p, _, err := b.store.UpdateHeartbeatPolicy(ctx, b.opts.MaxHeartbeatsPerSecond, b.opts.MaxHeartbeatInterval)
		if err != nil {
			return IdleResult{}, err
		}
		every = max(every, p.Interval)
		f.start(ctx)
		defer func() { _ = f.cordon(context.WithoutCancel(ctx)) }()
	}
	backends, err := b.settle(ctx)
	if err != nil {
		return IdleResult{}, err
	}
	b.logf("%d idle agents up (%d server processes); measuring for %s", n, backends, b.opts.IdleWindow)
	a0, err := b.store.Activity(ctx)
	if err != nil {
		return IdleResult{}, err
	}
	u0, err := serverCPU(b.postmaster)
	if err != nil {
		return IdleResult{}, err
	}
	self0, t0 := selfCPU(), time.Now()
	if !sleepCtx(ctx, b.opts.IdleWindow) {
		return IdleResult{}, ctx.Err()
	}
	u1, err := serverCPU(b.postmaster)
	if err != nil {
		return IdleResult{}, err
	}
	self1, elapsed := selfCPU(), time.Since(t0)
	a1, err := b.store.Activity(ctx)
	if err != nil {
		return IdleResult{}, err
	}
	notifyCPU, rate, err := b.notifyCost(ctx, n)
	if err != nil {
		return IdleResult{}, err
	}
	d := a1.Sub(a0)
	secs := elapsed.Seconds()
	idleCPU := (u1.cpu - u0.cpu).Seconds() / secs
	r := IdleResult{
		Agents:              n,
		HeartbeatSec:        every.Seconds(),
		Backends:            backends,
		WindowSec:           secs,
		PostgresCPUSec:      (u1.cpu - u0.cpu).Seconds(),
		PostgresCorePercent: 100 * idleCPU,
		WakeupsPerSec:       float64(u1.slices-u0.slices) / secs,
		AgentsCorePercent:   100 * (self1 - self0).Seconds() / secs,
		WriteTxnsPerSec:     float64(d.NextXID) / secs,
		WALSyncsPerSec:      float64(d.WALSyncs) / secs,
		NotifyRate:          rate,
		NotifyServerCPU:     1e6 * (notifyCPU - idleCPU) / rate,
	}
	if d.Updates > 0 {
		r.HOTUpdatePercent = 100 * float64(d.HOTUpdates) / float64(d.Updates)
	}
	return r, nil
}

// settle waits until the agents have connected and done their first round,
// and until backends that went away have been waited for: at least two
// seconds, and until the number of server processes has not changed for two
// seconds (bounded by two minutes). It returns that number.
func (b *bench) settle(ctx context.Context) (int, error) {
	if !sleepCtx(ctx, 2*time.Second) {
		return 0, ctx.Err()
	}
	last, same := -1, 0
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		u, err := serverCPU(b.postmaster)
		if err != nil {
			return 0, err
		}
		if u.children == last {
			same++
		} else {
			last, same = u.children, 0
		}
		if same >= 4 {
			return last, nil
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
	return last, nil
}

// probeChannel is a channel nobody listens on.
const probeChannel = "orch_bench_probe"

// notifyCost measures the server's CPU, per second, while the bench sends
// notifications at a steady rate on a channel that no agent listens on, for
// half the idle window. PostgreSQL signals every listening connection of the
// database on every notifying commit, so what one costs grows with the
// number of agents listening. The rate keeps the listeners' wake-ups to
// about 20,000 a second, which the machine can take.
func (b *bench) notifyCost(ctx context.Context, listeners int) (cpuPerSec, rate float64, err error) {
	rate = 200
	if listeners > 100 {
		rate = max(10, 20000/float64(listeners))
	}
	window := max(2*time.Second, b.opts.IdleWindow/2)
	interval := time.Duration(float64(time.Second) / rate)
	u0, err := serverCPU(b.postmaster)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	next := start
	for time.Since(start) < window {
		if err := b.store.Notify(ctx, probeChannel); err != nil {
			return 0, 0, err
		}
		if next = next.Add(interval); !sleepCtx(ctx, time.Until(next)) && ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
	}
	u1, err := serverCPU(b.postmaster)
	if err != nil {
		return 0, 0, err
	}
	return (u1.cpu - u0.cpu).Seconds() / time.Since(start).Seconds(), rate, nil
}

// calibrate measures the server CPU of the simplest round trip (an empty
// query), to read the idle figures by: on a busy or slow machine everything
// costs more CPU, this too.
func (b *bench) calibrate(ctx context.Context) error {
	const n = 2000
	u0, err := serverCPU(b.postmaster)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := b.store.Ping(ctx); err != nil {
			return err
		}
	}
	u1, err := serverCPU(b.postmaster)
	if err != nil {
		return err
	}
	b.report.RoundTripServerCPU = float64((u1.cpu-u0.cpu)/time.Microsecond) / n
	return b.calibrateCold(ctx)
}

// calibrateCold measures the server CPU of an empty round trip on a
// connection that has been idle for two seconds, as an agent's is between
// heartbeats: 200 connections, each pinged in turn, 100 pings a second. Next
// to the warm figure it shows what waking a backend that the CPU caches have
// forgotten costs, which is most of what an idle agent costs.
func (b *bench) calibrateCold(ctx context.Context) error {
	const conns, rate = 200, 100
	cfg, err := pgxpool.ParseConfig(b.url)
	if err != nil {
		return err
	}
	cfg.MaxConns, cfg.MinConns = 1, 1
	stores := make([]*postgres.Store, 0, conns)
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		s, err := postgres.OpenConfig(ctx, cfg.Copy())
		if err != nil {
			return err
		}
		stores = append(stores, s)
		if err := s.Ping(ctx); err != nil {
			return err
		}
	}
	if !sleepCtx(ctx, 2*time.Second) {
		return ctx.Err()
	}
	u0, err := serverCPU(b.postmaster)
	if err != nil {
		return err
	}
	n := 0
	for next := time.Now(); n < 3*conns; n++ {
		if err := stores[n%conns].Ping(ctx); err != nil {
			return err
		}
		if next = next.Add(time.Second / rate); !sleepCtx(ctx, time.Until(next)) && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	u1, err := serverCPU(b.postmaster)
	if err != nil {
		return err
	}
	b.report.ColdRoundTripServerCPU = float64((u1.cpu-u0.cpu)/time.Microsecond) / float64(n)
	return nil
}
