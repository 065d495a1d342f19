package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// Log shipping: while a container runs, a shipper per container follows
// its output through the runtime's LogReader and writes it to the database
// in batches. Each batch moves the task's shipped position forward, so a
// restarted agent resumes where the last one stopped.
//
// A shipper runs for every container a node holds, most of which are quiet:
// it is one goroutine, and its batch grows only with the output
// (preallocated batches once took 64 KB per container, 16 MB for a node of
// 250).
const (
	logBatchLines = 500
	logBatchDelay = 200 * time.Millisecond
)

// observer is the agent's bookkeeping for stats, logs and metrics.
type observer struct {
	metrics *agentMetrics

	mu       sync.Mutex
	shippers map[uuid.UUID]*shipper // by task
}

func (o *observer) init(a *Agent) {
	o.metrics = newAgentMetrics(a)
	o.shippers = map[uuid.UUID]*shipper{}
}

type shipper struct {
	lease       queue.Lease
	containerID string
	cancel      context.CancelFunc
	done        chan struct{}
}

// shipLogs starts shipping a container's output in the background, if the
// runtime can read it and no shipper already runs for the lease.
func (a *Agent) shipLogs(ctx context.Context, lease queue.Lease, containerID string) {
	lr, ok := a.rt.(LogReader)
	if !ok {
		return
	}
	a.obs.mu.Lock()
	if old, ok := a.obs.shippers[lease.TaskID]; ok && old.lease == lease {
		a.obs.mu.Unlock()
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	sh := &shipper{lease: lease, containerID: containerID, cancel: cancel, done: make(chan struct{})}
	a.obs.shippers[lease.TaskID] = sh
	a.obs.mu.Unlock()
	go func() {
		since, ok := a.logPosition(sctx, sh)
		// The reading lasts as long as the container: it gets a goroutine
		// of its own, with a stack that did not grow deep in the database
		// driver (a node holds hundreds of quiet shippers).
		go func() {
			defer cancel()
			defer func() {
				a.obs.mu.Lock()
				if a.obs.shippers[lease.TaskID] == sh {
					delete(a.obs.shippers, lease.TaskID)
				}
				a.obs.mu.Unlock()
			}()
			if !ok {
				close(sh.done)
				return
			}
			a.ship(sctx, lr, sh, since, true)
		}()
	}()
}

// flushLogs makes sure every line of an exited container is in the
// database, within LogFlushTimeout: it waits for the container's shipper,
// or, when none runs (an exit found at reconcile), ships what is left once.
func (a *Agent) flushLogs(ctx context.Context, lease queue.Lease, containerID string) {
	lr, ok := a.rt.(LogReader)
	if !ok {
		return
	}
	timer := time.NewTimer(a.opts.LogFlushTimeout)
	defer timer.Stop()
	a.obs.mu.Lock()
	sh, running := a.obs.shippers[lease.TaskID]
	a.obs.mu.Unlock()
	if running && sh.lease == lease {
		select {
		case <-sh.done:
		case <-ctx.Done():
		case <-timer.C:
			a.log.Warn("log shipping did not finish in time; recording the exit anyway", "task", lease.TaskID)
			sh.cancel()
			<-sh.done
		}
		return
	}
	fctx, cancel := context.WithTimeout(ctx, a.opts.LogFlushTimeout)
	defer cancel()
	once := &shipper{lease: lease, containerID: containerID, cancel: cancel, done: make(chan struct{})}
	if since, ok := a.logPosition(fctx, once); ok {
		a.ship(fctx, lr, once, since, false)
	}
}

// logPosition reads how far the task's output was shipped, retrying while
// the database is away; false if ctx ended first.
func (a *Agent) logPosition(ctx context.Context, sh *shipper) (since time.Time, ok bool) {
	err := retry(ctx, a.log, "reading log position", func(ctx context.Context) error {
		var err error
		since, err = a.store.LogPosition(ctx, sh.lease)
		return err
	})
	return since, err == nil
}

// ship reads the container's output after since, the shipped position, and
// writes it in batches until the output ends (the container stopped, or,
// without follow, what is there is read) or ctx ends. It closes sh.done.
func (a *Agent) ship(ctx context.Context, lr LogReader, sh *shipper, since time.Time, follow bool) {
	defer close(sh.done)
	b := &logBatcher{a: a, ctx: ctx, sh: sh}
	defer b.close()
	// Times are kept to the microsecond, as Postgres stores them, so that
	// the stored position compares equal to the line it came from.
	skip, last := since, since
	for backoff := time.Second; ; backoff = min(2*backoff, 10*time.Second) {
		err := lr.Logs(ctx, sh.containerID, skip, follow, func(l queue.LogLine) error {
			l.At = l.At.Truncate(time.Microsecond)
			if !skip.IsZero() && !l.At.After(skip) {
				return nil // shipped before (the engine's since is inclusive)
			}
			last = l.At
			l.Attempt = sh.lease.Attempt
			return b.add(l)
		})
		if err == nil || !follow || ctx.Err() != nil || errors.Is(err, errLogsNotOwned) {
			if err != nil && ctx.Err() == nil && !errors.Is(err, errLogsNotOwned) {
				a.log.Warn("reading container logs", "task", sh.lease.TaskID, "err", err)
			}
			return
		}
		// The engine dropped the stream while the container runs: pick up
		// where it stopped.
		skip = last
		a.log.Warn("container log stream broke; resuming", "task", sh.lease.TaskID, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// errLogsNotOwned stops the reading of a container whose task is no longer
// the node's.
var errLogsNotOwned = errors.New("the task is no longer this node's")

// logBatcher collects a shipper's lines and writes them when a batch is full
// (in the reader's goroutine, which waits meanwhile: that is the
// backpressure) or logBatchDelay after the batch's first line (in a timer's
// goroutine). It needs no goroutine of its own while the container is quiet.
type logBatcher struct {
	a   *Agent
	ctx context.Context
	sh  *shipper

	mu    sync.Mutex // held through a write, so batches go out in order
	batch []queue.LogLine
	timer *time.Timer
	lost  bool // the task is no longer the node's
}

func (b *logBatcher) add(l queue.LogLine) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost {
		return errLogsNotOwned
	}
	b.batch = append(b.batch, l)
	if len(b.batch) >= logBatchLines {
		return b.flushLocked()
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(logBatchDelay, b.flushLater)
	}
	return nil
}

func (b *logBatcher) flushLater() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.flushLocked(); errors.Is(err, errLogsNotOwned) {
		b.sh.cancel() // ends the reader
	}
}

// close writes what is left.
func (b *logBatcher) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.flushLocked()
}

// flushLocked writes the batch, retrying until it is stored or ctx ends.
func (b *logBatcher) flushLocked() error {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.batch) == 0 || b.lost {
		return nil
	}
	a, sh := b.a, b.sh
	err := retry(b.ctx, a.log, "shipping logs", func(ctx context.Context) error {
		res, err := a.store.AppendLogs(ctx, sh.lease, b.batch, a.opts.LogLimits)
		switch {
		case err == nil:
			a.obs.metrics.logLines.Add(float64(res.Stored))
			a.obs.metrics.logDropped.Add(float64(res.Dropped))
		case errors.Is(err, queue.ErrNotOwner), errors.Is(err, queue.ErrNotFound):
			b.lost = true
			return nil
		default:
			a.obs.metrics.errors.WithLabelValues("logs").Inc()
		}
		return err
	})
	b.batch = nil // a quiet container holds no buffer between bursts
	if b.lost {
		a.log.Info("not shipping logs of a task this node no longer owns", "task", sh.lease.TaskID)
		return errLogsNotOwned
	}
	return err
}
