package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgserver"
)

// The fleet phase: fleets of --fleet-agents (1,000 and 10,000) simulated
// agents on one PostgreSQL, deployed as a large fleet would be: PgBouncer in
// transaction mode in front of the server (started by the bench), a
// coordinator process of this binary connected through it (with a direct
// connection for its one LISTEN), and agents connected through it that
// hear of their work by long-polling the coordinator. For each size it
// measures
//
//   - what the heartbeat statement costs PostgreSQL at its most (--fleet-beat-time
//     of beats from 32 clients, through the pooler): beats/s and server CPU
//     per beat, which the coordinators' --max-heartbeats-per-second is set
//     from;
//   - once the fleet has settled (agents start spread over one heartbeat
//     interval, then a settling pause), over --fleet-window (120 s): the
//     client backends, the CPU of PostgreSQL, of PgBouncer, of the
//     coordinator and of this process (the agents), with the load average;
//   - create→claimed p50/p99 of --fleet-tasks tasks spread across the fleet;
//   - the time from killing --fleet-kill agents at once to the coordinator
//     declaring each node down;
//   - this process's resident memory with the fleet running.

// FleetResult is one fleet size's figures.
type FleetResult struct {
	Agents int `json:"agents"`
	// AgentsPerPool agents share one pgx pool of agent.PooledConns
	// connections to PgBouncer: 1 is the real deployment; more when this
	// process's file limit cannot hold a pool for each (see fleetPerPool).
	AgentsPerPool   int     `json:"agents_per_pool"`
	PoolerClients   int     `json:"pgbouncer_client_connections"`
	ClientBackends  int     `json:"client_backends"`
	ServerProcesses int     `json:"server_processes"`
	HeartbeatSec    float64 `json:"heartbeat_interval_s"`
	// BeatsPerSec is the heartbeats a second the server took at its most
	// (32 clients through the pooler); BeatServerCPU the server CPU, in
	// microseconds, of one.
	BeatsPerSec   float64 `json:"max_beats_per_s"`
	BeatServerCPU float64 `json:"beat_server_cpu_us"`

	WindowSec              float64    `json:"window_s"`
	PostgresCorePercent    float64    `json:"postgres_core_percent"`
	PoolerCorePercent      float64    `json:"pgbouncer_core_percent"`
	CoordinatorCorePercent float64    `json:"coordinator_core_percent"`
	AgentsCorePercent      float64    `json:"agents_core_percent"`
	WriteTxnsPerSec        float64    `json:"write_txns_per_s"`
	HOTUpdatePercent       float64    `json:"hot_update_percent"`
	LoadAvg                [3]float64 `json:"load_avg"`
	RSSBytes               int64      `json:"agents_process_rss_bytes"`

	Tasks int     `json:"tasks"`
	P50MS float64 `json:"create_to_claimed_p50_ms"`
	P99MS float64 `json:"create_to_claimed_p99_ms"`
	MaxMS float64 `json:"create_to_claimed_max_ms"`

	Killed          int     `json:"killed"`
	DetectMinSec    float64 `json:"detect_min_s"`
	DetectMaxSec    float64 `json:"detect_max_s"`
	NodeDownTimeout float64 `json:"node_down_timeout_s"`
}

// fleetStartRate is how many simulated agents start a second, at most.
const fleetStartRate = 100

// fleetPoolSize is PgBouncer's default_pool_size for the phase: it lets
// twice as many server connections (max_db_connections), well under the
// 200 backends a fleet of any size may cost.
const fleetPoolSize = 20

func (b *bench) fleetPhase(ctx context.Context) error {
	if b.postmaster == 0 {
		return skipError{"the server's processes are not visible on this machine"}
	}
	b.stopCoordinator() // only this phase's processes
	dir := filepath.Join(b.dir, "pgbouncer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	largest := 0
	for _, n := range b.opts.FleetAgents {
		largest = max(largest, n)
	}
	bouncer, err := pgserver.StartBouncer(ctx, b.url, pgserver.BouncerOptions{Dir: dir, PoolSize: fleetPoolSize,
		MaxClients: min(2*largest+500, fileLimit()-100)})
	if err != nil {
		return skipError{fmt.Sprintf("no PgBouncer: %v", err)}
	}
	defer bouncer.Stop()
	for _, n := range b.opts.FleetAgents {
		r, err := b.fleetOnce(ctx, bouncer, n)
		if err != nil {
			if r.WindowSec > 0 { // what was measured before the failure
				b.report.Fleet = append(b.report.Fleet, r)
			}
			return fmt.Errorf("%d agents: %w", n, err)
		}
		b.report.Fleet = append(b.report.Fleet, r)
	}
	return nil
}

func (b *bench) fleetOnce(ctx context.Context, bouncer *pgserver.Bouncer, n int) (FleetResult, error) {
	r := FleetResult{Agents: n, AgentsPerPool: fleetPerPool(n), NodeDownTimeout: coordinator.DefaultNodeDownTimeout.Seconds()}
	// The nodes of earlier fleets are gone: down, as a sweeper would mark
	// them, so that the heartbeat policy counts this fleet only.
	if !sleepCtx(ctx, 3*time.Second) {
		return r, ctx.Err()
	}
	if _, err := b.store.MarkSilentNodesDown(ctx, time.Second); err != nil {
		return r, err
	}
	// The coordinator starts once the fleet is registered and beaten:
	// registering thousands takes a while, and its sweeper would declare
	// the first ones down meanwhile.
	addr, err := freeLoopback()
	if err != nil {
		return r, err
	}
	api := "http://" + addr
	b.logf("fleet of %d: registering (%d agents per pool, through PgBouncer)", n, r.AgentsPerPool)
	f, err := b.newFleetVia(ctx, fmt.Sprintf("fleet%d", n), n, fleetConn{url: bouncer.URL(), pooler: postgres.TransactionPooler,
		perPool: r.AgentsPerPool, coordinators: []string{api}})
	if err != nil {
		return r, err
	}
	defer f.stop()
	// What the coordinators' sweep does: scale the heartbeats to the live
	// nodes, now rather than at its next round.
	p, _, err := b.store.UpdateHeartbeatPolicy(ctx, b.opts.MaxHeartbeatsPerSecond, b.opts.MaxHeartbeatInterval)
	if err != nil {
		return r, err
	}
	every := max(b.opts.HeartbeatInterval, p.Interval)
	r.HeartbeatSec = every.Seconds()
	// Agents start over an interval, and no faster than fleetStartRate:
	// an agent's first minute (registering, reconciling, its first beats,
	// stats and claims) costs several statements at once, and thousands
	// starting together would measure the start, not the fleet.
	spread := max(every, time.Duration(n)*time.Second/fleetStartRate)
	if r.BeatsPerSec, r.BeatServerCPU, err = b.beatCost(ctx, bouncer.URL(), f.nodes, spread); err != nil {
		return r, fmt.Errorf("heartbeat cost: %w", err)
	}
	b.logf("fleet of %d: %.0f beats/s at most, %.0f µs of server CPU each; starting the agents over %s (they beat every %s)",
		n, r.BeatsPerSec, r.BeatServerCPU, spread, every)
	coord, err := b.startProc(fmt.Sprintf("fleet-coordinator-%d", n), "coordinator", "--database-url", bouncer.URL(),
		"--database-pooler", "transaction", "--listen-database-url", b.url, "--listen", addr, "--no-migrate",
		"--strategy", "spread", "--max-heartbeats-per-second", strconv.FormatFloat(b.opts.MaxHeartbeatsPerSecond, 'f', -1, 64),
		"--max-heartbeat-interval", b.opts.MaxHeartbeatInterval.String())
	if err != nil {
		return r, err
	}
	defer coord.stop()
	coord.api = api
	if err := waitHealthy(ctx, coord); err != nil {
		return r, err
	}
	f.startSpread(ctx, spread)
	// Settled: every agent started, beat and looked for work, and the
	// server's processes stopped coming and going.
	if !sleepCtx(ctx, spread+every+5*time.Second) {
		return r, ctx.Err()
	}
	if r.ServerProcesses, err = b.settle(ctx); err != nil {
		return r, err
	}
	if r.ClientBackends, err = b.store.ClientBackends(ctx); err != nil {
		return r, err
	}
	r.PoolerClients = f.poolConns()
	b.logf("fleet of %d settled: %d client backends, %d pooler client connections; measuring for %s", n, r.ClientBackends, r.PoolerClients, b.opts.FleetWindow)
	if err := b.fleetIdle(ctx, &r, bouncer.Pid(), coord.cmd.Process.Pid); err != nil {
		return r, err
	}
	r.RSSBytes, _ = currentRSS(os.Getpid())
	b.logf("fleet of %d: Postgres %.1f%% of a core over %.0f s (load %.1f), PgBouncer %.1f%%, coordinator %.1f%%, agents %.1f%%, %.0f write transactions/s; RSS %s",
		n, r.PostgresCorePercent, r.WindowSec, r.LoadAvg[0], r.PoolerCorePercent, r.CoordinatorCorePercent, r.AgentsCorePercent, r.WriteTxnsPerSec, fmtMB(r.RSSBytes))
	if err := b.fleetLatency(ctx, &r, coord.api); err != nil {
		return r, err
	}
	if err := b.fleetKill(ctx, &r, f); err != nil {
		return r, err
	}
	b.logf("fleet of %d: %d client backends; Postgres %.1f%% of a core (load %.1f), PgBouncer %.1f%%, coordinator %.1f%%, agents %.1f%%; "+
		"create→claimed p50 %.0f ms, p99 %.0f ms; killed nodes down after %.1f–%.1f s; RSS %s",
		n, r.ClientBackends, r.PostgresCorePercent, r.LoadAvg[0], r.PoolerCorePercent, r.CoordinatorCorePercent, r.AgentsCorePercent,
		r.P50MS, r.P99MS, r.DetectMinSec, r.DetectMaxSec, fmtMB(r.RSSBytes))
	return r, nil
}

// fleetIdle measures the settled fleet's cost over the window.
func (b *bench) fleetIdle(ctx context.Context, r *FleetResult, poolerPid, coordPid int) error {
	a0, err := b.store.Activity(ctx)
	if err != nil {
		return err
	}
	u0, err := serverCPU(b.postmaster)
	if err != nil {
		return err
	}
	pool0, coord0, self0, t0 := procTicks(poolerPid), procTicks(coordPid), selfCPU(), time.Now()
	if !sleepCtx(ctx, b.opts.FleetWindow) {
		return ctx.Err()
	}
	u1, err := serverCPU(b.postmaster)
	if err != nil {
		return err
	}
	pool1, coord1, self1, secs := procTicks(poolerPid), procTicks(coordPid), selfCPU(), time.Since(t0).Seconds()
	r.LoadAvg = loadAvg()
	a1, err := b.store.Activity(ctx)
	if err != nil {
		return err
	}
	d := a1.Sub(a0)
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / secs }
	r.WindowSec = secs
	r.PostgresCorePercent = pct(u1.cpu - u0.cpu)
	r.PoolerCorePercent = pct(pool1 - pool0)
	r.CoordinatorCorePercent = pct(coord1 - coord0)
	r.AgentsCorePercent = pct(self1 - self0)
	r.WriteTxnsPerSec = float64(d.NextXID) / secs
	if d.Updates > 0 {
		r.HOTUpdatePercent = 100 * float64(d.HOTUpdates) / float64(d.Updates)
	}
	return nil
}

// fleetLatency creates tasks through the coordinator at --latency-rate,
// one at a time, and reads create→claimed by the database's clock.
func (b *bench) fleetLatency(ctx context.Context, r *FleetResult, api string) error {
	client, err := coordinator.NewClient(api, "")
	if err != nil {
		return err
	}
	live0, err := b.store.LiveTasks(ctx, math.MaxInt32)
	if err != nil {
		return err
	}
	m := b.opts.FleetTasks
	interval := time.Duration(float64(time.Second) / b.opts.LatencyRate)
	req := simRequest("100m", "-exit", "0")
	ids := make([]uuid.UUID, 0, m)
	next := time.Now()
	for i := 0; i < m; i++ {
		if !sleepCtx(ctx, time.Until(next)) {
			return ctx.Err()
		}
		t, err := client.CreateTask(ctx, req)
		if err != nil {
			return fmt.Errorf("creating task: %w", err)
		}
		ids = append(ids, t.ID)
		if next = next.Add(interval); next.Before(time.Now()) {
			next = time.Now()
		}
	}
	if err := b.waitFinished(ctx, ids, live0, phaseTimeout(m)); err != nil {
		return err
	}
	lat, err := b.store.StateLatencies(ctx, ids, queue.Starting)
	if err != nil {
		return err
	}
	if len(lat) != m {
		return fmt.Errorf("%d of %d tasks were claimed", len(lat), m)
	}
	r.Tasks = m
	r.P50MS, r.P99MS, r.MaxMS = ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(percentile(lat, 100))
	return nil
}

// fleetKill kills --fleet-kill agents at once and waits until the
// coordinator has declared each of their nodes down.
func (b *bench) fleetKill(ctx context.Context, r *FleetResult, f *fleet) error {
	k := min(b.opts.FleetKill, len(f.agents))
	killed := rand.Perm(len(f.agents))[:k]
	start := time.Now()
	for _, i := range killed {
		f.kill(i)
	}
	var lo, hi time.Duration
	left := map[int]bool{}
	for _, i := range killed {
		left[i] = true
	}
	limit := 2*time.Duration(r.HeartbeatSec*float64(time.Second)) + time.Minute
	for deadline := start.Add(limit); len(left) > 0; {
		for i := range left {
			n, err := b.store.GetNode(ctx, f.nodes[i].String())
			if err != nil {
				return err
			}
			if n.State == queue.NodeDown {
				d := n.StateChangedAt.Sub(start)
				if lo == 0 || d < lo {
					lo = d
				}
				hi = max(hi, d)
				delete(left, i)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d killed agents' nodes still not down after %s", len(left), k, limit)
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
	r.Killed, r.DetectMinSec, r.DetectMaxSec = k, lo.Seconds(), hi.Seconds()
	return nil
}

// beatCost beats every node of the fleet, in order, as fast as 32
// clients through the pooler can, pass after pass for --fleet-beat-time
// and at least once: the server's ceiling for heartbeats, and what one
// costs it. The beats ask for the interval every, so that the fleet,
// started in the same order over that time, finds each node beaten at most
// that long ago: none is declared down before its agent has started.
func (b *bench) beatCost(ctx context.Context, url string, nodes []uuid.UUID, every time.Duration) (perSec, cpuUS float64, err error) {
	const clients = 32
	s, err := postgres.OpenWith(ctx, url, postgres.Options{Pooler: postgres.TransactionPooler, MaxConns: clients})
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	u0, err := serverCPU(b.postmaster)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	beats := 0
	for pass := 0; pass == 0 || time.Since(start) < b.opts.FleetBeatTime; pass++ {
		if err := beatPass(ctx, s, nodes, every, clients); err != nil {
			return 0, 0, err
		}
		beats += len(nodes)
	}
	elapsed := time.Since(start)
	u1, err := serverCPU(b.postmaster)
	if err != nil {
		return 0, 0, err
	}
	return float64(beats) / elapsed.Seconds(), float64((u1.cpu-u0.cpu)/time.Microsecond) / float64(beats), nil
}

// beatPass beats every node once, in order, from clients goroutines.
func beatPass(ctx context.Context, s *postgres.Store, nodes []uuid.UUID, every time.Duration, clients int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(nodes)); i = next.Add(1) - 1 {
				if _, err := s.Beat(ctx, nodes[i], postgres.NodeHealth{}, every); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when none failed
}

// fleetPerPool is how many simulated agents share one pgx pool. A real
// agent has its own pool of agent.PooledConns connections to PgBouncer,
// and so does a simulated one while this process's file limit holds them
// all next to the fleet's long-polls (one connection each, to the
// coordinator): PostgreSQL sees the same either way, since PgBouncer
// multiplexes every client onto its own few server connections. Beyond
// that limit (a fleet of 10,000 under the usual 20,000 files) agents
// share pools, and PgBouncer serves fewer client connections than a real
// fleet would make it: that costs PgBouncer (a few kB and no CPU per idle
// client), not PostgreSQL.
func fleetPerPool(n int) int {
	// The long-polls (one each, more while they reconnect), and room for
	// the rest: 10,000 agents ran out of 20,000 files with 2,000 spare,
	// each agent's stats reading /proc meanwhile.
	budget := fileLimit() - n - 5000
	need := n * agent.PooledConns
	if budget <= 0 {
		return n
	}
	return max(1, (need+budget-1)/budget)
}

// fileLimit is this process's limit on open files.
func fileLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > math.MaxInt32 {
		return 1024
	}
	return int(l.Cur)
}

// poolConns counts the fleet's open connections to the pooler.
func (f *fleet) poolConns() int {
	n := 0
	for _, s := range f.stores {
		if s != nil {
			n += s.OpenConns()
		}
	}
	return n
}

// procTicks is the CPU time a process has used, all threads (0 when it is
// gone).
func procTicks(pid int) time.Duration {
	st, err := readProcStat(pid)
	if err != nil {
		return 0
	}
	return time.Duration(st.utime+st.stime) * clockTick
}
