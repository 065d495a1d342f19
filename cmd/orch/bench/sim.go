package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// simCapacity is what a simulated node offers: room for every task a phase
// places on it at once, so that phases measure orch, not a full cluster.
var simCapacity = queue.Resources{CPUMillis: 64_000, MemoryBytes: 256 << 30, DiskBytes: 1 << 40}

// fleet is a set of simulated agents in this process: the real agent code,
// each with its own connection pool as on its own machine (or, for fleets
// larger than this process's file limit allows, a few sharing one; see
// fleet.go), over an in-memory runtime that acts like the test workload.
type fleet struct {
	b      *bench
	agents []*agent.Agent
	names  []string
	stores []*postgres.Store
	nodes  []uuid.UUID

	cancel  context.CancelFunc
	kills   []context.CancelFunc // one agent each (startSpread)
	wg      sync.WaitGroup
	stopped atomic.Bool
}

// newFleet registers n simulated nodes named bench-<run>-<prefix>-<i>,
// each agent with its own connections straight to the bench's server. The
// agents do not run until start.
func (b *bench) newFleet(ctx context.Context, prefix string, n int) (*fleet, error) {
	return b.newFleetVia(ctx, prefix, n, fleetConn{url: b.url})
}

// fleetConn is how a fleet's agents reach the database and hear of work.
type fleetConn struct {
	url    string
	pooler postgres.Pooler
	// perPool agents share one connection pool of agent.PooledConns (1 or
	// 0: each agent has its own pool, of pgx's default size unless pooled).
	perPool int
	// coordinators are long-polled for wake-ups (pooled agents).
	coordinators []string
}

// newFleetVia is newFleet with the agents connected as conn says.
func (b *bench) newFleetVia(ctx context.Context, prefix string, n int, conn fleetConn) (*fleet, error) {
	f := &fleet{b: b, agents: make([]*agent.Agent, n), names: make([]string, n), stores: make([]*postgres.Store, n),
		nodes: make([]uuid.UUID, n)}
	b.mu.Lock()
	b.fleets = append(b.fleets, f)
	b.mu.Unlock()
	log := quietLogger(b.logw)
	per := max(conn.perPool, 1)
	opts := postgres.Options{Pooler: conn.pooler}
	if conn.pooler == postgres.TransactionPooler {
		opts.MaxConns = agent.PooledConns
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for first := 0; first < n; first += per {
		g.Go(func() error {
			store, err := postgres.OpenWith(gctx, conn.url, opts)
			if err != nil {
				return err
			}
			f.stores[first] = store // closed once, by its first agent's slot
			for i := first; i < min(first+per, n); i++ {
				f.names[i] = fmt.Sprintf("bench-%s-%s-%d", b.id, prefix, i+1)
				a := agent.New(store, &agent.MemRuntime{Behave: agent.WorkloadBehavior}, agent.Options{
					Name:              f.names[i],
					Capacity:          simCapacity,
					HeartbeatInterval: b.opts.HeartbeatInterval,
					Coordinators:      conn.coordinators,
					Logger:            log,
				})
				if err := a.Register(gctx); err != nil {
					return err
				}
				f.agents[i], f.nodes[i] = a, a.Node().ID
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		f.stop()
		return nil, fmt.Errorf("registering %d simulated agents: %w", n, err)
	}
	return f, nil
}

// start runs every agent until stop.
func (f *fleet) start(ctx context.Context) {
	f.startSpread(ctx, 0)
}

// startSpread runs every agent until stop (or its kill), starting them
// evenly over the duration over, as a fleet whose machines boot at
// different times would: no thundering herd of first heartbeats.
func (f *fleet) startSpread(ctx context.Context, over time.Duration) {
	ctx, f.cancel = context.WithCancel(ctx)
	f.kills = make([]context.CancelFunc, len(f.agents))
	start := time.Now()
	for i, a := range f.agents {
		actx, kill := context.WithCancel(ctx)
		f.kills[i] = kill
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if over > 0 && !sleepCtx(actx, time.Until(start.Add(over*time.Duration(i)/time.Duration(len(f.agents))))) {
				return
			}
			if err := a.Run(actx); err != nil && actx.Err() == nil {
				f.b.logf("simulated agent %s: %v", f.names[i], err)
			}
		}()
	}
}

// kill stops agent i at once, as a machine that dies: no goodbye, its
// node just falls silent.
func (f *fleet) kill(i int) { f.kills[i]() }

// stop ends the agents and closes their connections. It is idempotent.
func (f *fleet) stop() {
	if f.stopped.Swap(true) {
		return
	}
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	for _, s := range f.stores {
		if s != nil {
			s.Close()
		}
	}
}

// cordon takes the fleet's nodes out of placement, so that later phases,
// whose nodes are others, are not placed onto these.
func (f *fleet) cordon(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, id := range f.nodes {
		if id == uuid.Nil {
			continue
		}
		g.Go(func() error {
			_, err := f.b.store.SetCordoned(gctx, id.String(), true)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("cordoning simulated nodes: %w", err)
	}
	return nil
}

// retire stops the fleet and cordons its nodes.
func (f *fleet) retire(ctx context.Context) error {
	f.stop()
	return f.cordon(ctx)
}

// quietLogger logs warnings and errors only: a thousand agents saying hello
// would drown the bench's output.
func quietLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
