package bench

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// DrainResult is the drain shape, the one River's figure is measured in: a
// backlog submitted in batches while nothing works it, then worked to the end.
type DrainResult struct {
	Agents           int     `json:"agents"`
	Tasks            int     `json:"tasks"`
	SubmitPerSec     float64 `json:"submit_per_s"`
	Seconds          float64 `json:"seconds"`
	LifecyclesPerSec float64 `json:"lifecycles_per_s"`
	// What a whole lifecycle cost, submission included.
	WriteTxnsPerTask   float64 `json:"write_txns_per_task"`
	RowsWrittenPerTask float64 `json:"rows_written_per_task"`
	WALBytesPerTask    float64 `json:"wal_bytes_per_task"`
	WALSyncsPerTask    float64 `json:"wal_syncs_per_task"`
	// Probes are tasks submitted one at a time while the backlog drains:
	// how long a newly submitted task waits to be claimed then.
	Probes      int     `json:"probes"`
	ProbeP50MS  float64 `json:"probe_wait_p50_ms"`
	ProbeP99MS  float64 `json:"probe_wait_p99_ms"`
	RiverRatio  float64 `json:"river_ratio,omitempty"`
	RiverJobsPS float64 `json:"river_jobs_per_s,omitempty"`
}

// drainBatch is how many tasks one submission carries.
const drainBatch = 1000

// drain stores DrainTasks no-op tasks in batches, then starts a coordinator
// beside Agents simulated agents and times them until every task has run.
func (b *bench) drain(ctx context.Context) error {
	n, m := b.opts.Agents, b.opts.DrainTasks
	f, live0, err := b.newFleetCounted(ctx, "drain", n)
	if err != nil {
		return err
	}
	defer f.stop()
	a0, err := b.settledActivity(ctx)
	if err != nil {
		return err
	}
	spec := simSpec("-exit", "0")
	spec.Normalize()
	ids := make([]uuid.UUID, 0, m)
	start := time.Now()
	for len(ids) < m {
		batch := make([]postgres.NewTask, min(drainBatch, m-len(ids)))
		for i := range batch {
			batch[i] = postgres.NewTask{Spec: spec}
		}
		tasks, err := b.store.CreateTasks(ctx, batch, postgres.CreateOpts{Quiet: true})
		if err != nil {
			return err
		}
		for _, t := range tasks {
			ids = append(ids, t.ID)
		}
	}
	submit := time.Since(start)

	f.start(ctx)
	// Let the agents connect and take their first look for work.
	sleepCtx(ctx, time.Second+time.Duration(n)*5*time.Millisecond)
	start = time.Now()
	rc, err := b.startCoordinator(ctx, "bench drain")
	if err != nil {
		return err
	}
	defer rc.stop() //nolint:errcheck // stopped below; this is for early returns
	probes, err := b.probe(ctx, ids, live0)
	if err != nil {
		return err
	}
	took := time.Since(start)
	a1, err := b.stopAll(ctx, rc, f)
	if err != nil {
		return err
	}
	waits, err := b.store.StateLatencies(ctx, probes, queue.Starting)
	if err != nil {
		return err
	}
	d := a1.Sub(a0)
	total := m + len(probes)
	b.report.Drain = &DrainResult{
		Agents: n, Tasks: m, SubmitPerSec: perSecond(m, submit),
		Seconds: took.Seconds(), LifecyclesPerSec: perSecond(total, took),
		WriteTxnsPerTask:   float64(d.NextXID) / float64(total),
		RowsWrittenPerTask: float64(d.RowsWritten) / float64(total),
		WALBytesPerTask:    float64(d.WALBytes) / float64(total),
		WALSyncsPerTask:    float64(d.WALSyncs) / float64(total),
		Probes:             len(probes), ProbeP50MS: ms(percentile(waits, 50)), ProbeP99MS: ms(percentile(waits, 99)),
	}
	return nil
}

// probe submits a task every 20 ms until the backlog ids has run, then
// waits for the probes too, and returns them.
func (b *bench) probe(ctx context.Context, ids []uuid.UUID, live0 int) ([]uuid.UUID, error) {
	spec := simSpec("-exit", "0")
	spec.Normalize()
	var probes []uuid.UUID
	done := make(chan error, 1)
	// A probe or two may be live at any moment: the backlog is done
	// once no more than that is.
	go func() { done <- b.waitFinished(ctx, ids, live0+2, phaseTimeout(len(ids))) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return nil, err
			}
			return probes, b.waitFinished(ctx, probes, live0, time.Minute)
		case <-tick.C:
			t, err := b.store.CreateTask(ctx, uuid.Nil, spec)
			if err != nil {
				return nil, err
			}
			probes = append(probes, t.ID)
		}
	}
}
