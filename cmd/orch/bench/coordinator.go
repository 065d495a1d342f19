package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue/postgres"
)

// runningCoordinator is a coordinator of the bench's, serving its API on a
// loopback port from a store (connection pool) of its own, as a replica
// would.
type runningCoordinator struct {
	addr   net.Addr
	client *coordinator.Client
	store  *postgres.Store
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startCoordinator starts a coordinator named name and returns once it
// serves.
func (b *bench) startCoordinator(ctx context.Context, name string) (*runningCoordinator, error) {
	cstore, err := postgres.Open(ctx, b.url)
	if err != nil {
		return nil, err
	}
	c, err := coordinator.New(cstore, coordinator.Options{Listen: "127.0.0.1:0", Strategy: b.opts.Strategy,
		MaxHeartbeatsPerSecond: coordinator.DefaultMaxHeartbeatsPerSecond, Name: name, Logger: quietLogger(b.logw)})
	if err != nil {
		cstore.Close()
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	rc := &runningCoordinator{store: cstore, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan net.Addr, 1)
	go func() { rc.done <- c.Run(cctx, func(a net.Addr) { ready <- a }) }()
	select {
	case rc.addr = <-ready:
	case err := <-rc.done:
		if err == nil {
			err = fmt.Errorf("it stopped as it started")
		}
		rc.done <- err
	case <-ctx.Done():
	}
	if rc.addr == nil {
		err := rc.stop()
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if rc.client, err = coordinator.NewClient("http://"+rc.addr.String(), ""); err != nil {
		rc.stop() //nolint:errcheck // the client's error says more
		return nil, err
	}
	return rc, nil
}

// stop stops the coordinator (once; later calls return the same) and
// closes its store. The error is why it stopped, if not because it was told.
func (rc *runningCoordinator) stop() error {
	rc.once.Do(func() {
		rc.cancel()
		if err := <-rc.done; err != nil && !errors.Is(err, context.Canceled) {
			rc.err = fmt.Errorf("coordinator: %w", err)
		}
		rc.store.Close()
	})
	return rc.err
}
