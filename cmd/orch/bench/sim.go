package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

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
// each with its own connection pool as on its own machine, over an in-memory
// runtime that acts like the test workload.
type fleet struct {
	b      *bench
	agents []*agent.Agent
	names  []string
	stores []*postgres.Store
	nodes  []uuid.UUID

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped atomic.Bool
}

// newFleet registers n simulated nodes named bench-<run>-<prefix>-<i>. The
// agents do not run until start.
func (b *bench) newFleet(ctx context.Context, prefix string, n int) (*fleet, error) {
	f := &fleet{b: b, agents: make([]*agent.Agent, n), names: make([]string, n), stores: make([]*postgres.Store, n),
		nodes: make([]uuid.UUID, n)}
	b.mu.Lock()
	b.fleets = append(b.fleets, f)
	b.mu.Unlock()
	log := quietLogger(b.logw)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			store, err := postgres.Open(gctx, b.url)
			if err != nil {
				return err
			}
			f.stores[i] = store
			f.names[i] = fmt.Sprintf("bench-%s-%s-%d", b.id, prefix, i+1)
			a := agent.New(store, &agent.MemRuntime{Behave: agent.WorkloadBehavior}, agent.Options{
				Name:              f.names[i],
				Capacity:          simCapacity,
				HeartbeatInterval: b.opts.HeartbeatInterval,
				Logger:            log,
			})
			if err := a.Register(gctx); err != nil {
				return err
			}
			f.agents[i], f.nodes[i] = a, a.Node().ID
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
	ctx, f.cancel = context.WithCancel(ctx)
	for i, a := range f.agents {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := a.Run(ctx); err != nil && ctx.Err() == nil {
				f.b.logf("simulated agent %s: %v", f.names[i], err)
			}
		}()
	}
}

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
