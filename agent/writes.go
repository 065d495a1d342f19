package agent

import (
	"context"
	"sync"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// maxWriteBatch bounds the writes of one transaction.
const maxWriteBatch = 256

// writer sends the agent's writes about its leases (a container runs, a
// container ended, a task handed back) to the database in batches, as a
// group commit does: a write goes at once when none is under way, and the
// writes that arrive while one is go together in the next transaction. An
// idle agent's write waits for nothing; a busy node that ends fifty tasks at
// once commits a few times instead of fifty (postgres.WriteBatch). Each
// write is still fenced by its lease and decided on its own.
type writer struct {
	store *postgres.Store

	mu      sync.Mutex
	pending []*pendingWrite
	busy    bool
}

type pendingWrite struct {
	w    postgres.AgentWrite
	res  postgres.WriteResult
	err  error // the batch failed: nothing was written
	done chan struct{}
}

// do queues w and waits until its batch has been written, or ctx ends. It
// returns the state the task is in after it, or why it changed nothing.
func (wr *writer) do(ctx context.Context, w postgres.AgentWrite) (queue.State, error) {
	p := &pendingWrite{w: w, done: make(chan struct{})}
	wr.mu.Lock()
	wr.pending = append(wr.pending, p)
	if !wr.busy {
		wr.busy = true
		go wr.flush()
	}
	wr.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if p.err != nil {
		return "", p.err
	}
	return p.res.State, p.res.Err
}

// flush writes batches until none is waiting. It runs on a context of its
// own: its writes are several callers', and a write of an agent that is
// stopping changes nothing a restarted agent would not write again.
func (wr *writer) flush() {
	for {
		wr.mu.Lock()
		n := min(len(wr.pending), maxWriteBatch)
		if n == 0 {
			wr.busy = false
			wr.mu.Unlock()
			return
		}
		batch := wr.pending[:n:n]
		wr.pending = append([]*pendingWrite(nil), wr.pending[n:]...)
		wr.mu.Unlock()
		writes := make([]postgres.AgentWrite, len(batch))
		for i, p := range batch {
			writes[i] = p.w
		}
		res, err := wr.store.WriteBatch(context.Background(), writes)
		for i, p := range batch {
			if err != nil {
				p.err = err
			} else {
				p.res = res[i]
			}
			close(p.done)
		}
	}
}

// markRunning records that the lease's container runs.
func (a *Agent) markRunning(ctx context.Context, l queue.Lease, containerID string) error {
	_, err := a.writes.do(ctx, postgres.AgentWrite{Lease: l, Running: &containerID})
	return err
}

// recordExitOf records how the lease's container ended and returns the
// state the task is in now.
func (a *Agent) recordExitOf(ctx context.Context, l queue.Lease, r postgres.ExitReport) (queue.State, error) {
	return a.writes.do(ctx, postgres.AgentWrite{Lease: l, Exit: &r})
}

// requeue hands the lease's task back to the queue.
func (a *Agent) requeue(ctx context.Context, l queue.Lease, reason string) error {
	_, err := a.writes.do(ctx, postgres.AgentWrite{Lease: l, Requeue: reason})
	return err
}
