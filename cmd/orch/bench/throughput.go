package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/orchd/orch/coordinator"
)

// placement measures how fast one coordinator places a backlog: tasks are
// stored first (the agents registered, not yet running), then scheduling
// passes place them all, then the agents start and run them.
func (b *bench) placement(ctx context.Context) error {
	n, m := b.opts.Agents, b.opts.Tasks
	f, live0, err := b.newFleetCounted(ctx, "place", n)
	if err != nil {
		return err
	}
	defer f.stop()
	ids, createDur, err := b.createDirect(ctx, m, 16, simSpec("-exit", "0"))
	if err != nil {
		return err
	}
	// The nodes registered before the backlog was made and do not
	// heartbeat until their agents run: the pass must not take them for down.
	c, err := coordinator.New(b.store, coordinator.Options{Strategy: b.opts.Strategy, NodeDownTimeout: time.Hour,
		Name: "bench placement", Logger: quietLogger(b.logw)})
	if err != nil {
		return err
	}
	start := time.Now()
	placed, passes := 0, 0
	for {
		res, err := c.Pass(ctx)
		if err != nil {
			return err
		}
		passes++
		placed += res.Placed
		if res.Placed == 0 && res.Rejected == 0 {
			break
		}
	}
	placeDur := time.Since(start)
	if placed != m {
		return fmt.Errorf("placed %d of %d tasks", placed, m)
	}
	start = time.Now()
	f.start(ctx)
	if err := b.waitFinished(ctx, ids, live0, phaseTimeout(m)); err != nil {
		return err
	}
	runDur := time.Since(start)
	if err := f.retire(ctx); err != nil {
		return err
	}
	b.report.Placement = &PlacementResult{
		Nodes: n, Tasks: m, Passes: passes,
		CreatesPerSec:    perSecond(m, createDur),
		PlacementsPerSec: perSecond(m, placeDur),
		RunPerSec:        perSecond(m, runDur),
	}
	return nil
}

// phaseTimeout bounds the wait for n tasks: generous, since the machine
// may be shared, but finite.
func phaseTimeout(n int) time.Duration {
	return max(2*time.Minute, time.Duration(n)*20*time.Millisecond)
}

// The pipeline phase submits pipelineBatch tasks per API request from
// pipelineClients clients, as a batch user would (orch task create -f): the
// shape River's inserts have in the peer-river phase. A sample of
// pipelineSample of its tasks goes one per request first, from 16 clients,
// for the per-task figure.
const (
	pipelineBatch   = 100
	pipelineClients = 4
	pipelineSample  = 5 // the sample is a fifth of --tasks
)

// pipeline runs tasks end to end: created through a coordinator's API while
// it schedules them and the simulated agents claim, run and finish them.
// Everything of the phase runs in this process, so that once it is over
// every connection that wrote is closed and the table counters are exact.
// The counters cover the batched submission only: the per-task sample runs
// and ends before them.
func (b *bench) pipeline(ctx context.Context) error {
	n, m := b.opts.Agents, b.opts.Tasks
	f, err := b.newFleet(ctx, "pipe", n)
	if err != nil {
		return err
	}
	defer f.stop()
	f.start(ctx)
	rc, err := b.startCoordinator(ctx, "bench pipeline")
	if err != nil {
		return err
	}
	defer rc.stop() //nolint:errcheck // stopped below; this is for early returns
	client := rc.client
	// Let the agents connect and take their first look for work, so the
	// counters below hold the tasks' writes, not the agents' start.
	sleepCtx(ctx, time.Second+time.Duration(n)*5*time.Millisecond)
	live0, err := b.store.LiveTasks(ctx, math.MaxInt32)
	if err != nil {
		return err
	}
	sample := max(1, m/pipelineSample)
	sampleIDs, sampleCreate, err := createAPI(ctx, client, sample, 16, simRequest("100m", "-exit", "0"))
	if err != nil {
		return err
	}
	if err := b.waitFinished(ctx, sampleIDs, live0, phaseTimeout(sample)); err != nil {
		return err
	}
	sFirst, sLast, _, err := b.store.TaskSpan(ctx, sampleIDs)
	if err != nil {
		return err
	}
	a0, err := b.settledActivity(ctx)
	if err != nil {
		return err
	}
	ids, createDur, err := createAPIBatches(ctx, client, m, pipelineBatch, pipelineClients, simRequest("100m", "-exit", "0"))
	if err != nil {
		return err
	}
	if err := b.waitFinished(ctx, ids, live0, phaseTimeout(m)); err != nil {
		return err
	}
	first, last, _, err := b.store.TaskSpan(ctx, ids)
	if err != nil {
		return err
	}
	a1, err := b.stopAll(ctx, rc, f)
	if err != nil {
		return err
	}
	d := a1.Sub(a0)
	r := &PipelineResult{
		Agents: n, Tasks: m, Batch: pipelineBatch, Clients: pipelineClients,
		PerTaskSample:        sample,
		PerTaskTasksPerSec:   perSecond(sample, sLast.Sub(sFirst)),
		PerTaskCreatesPerSec: perSecond(sample, sampleCreate),
		Seconds:              last.Sub(first).Seconds(),
		TasksPerSec:          perSecond(m, last.Sub(first)),
		CreatesPerSec:        perSecond(m, createDur),
		WriteTxnsPerTask:     float64(d.NextXID) / float64(m),
		RowsWrittenPerTask:   float64(d.RowsWritten) / float64(m),
		WALBytesPerTask:      float64(d.WALBytes) / float64(m),
		WALSyncsPerTask:      float64(d.WALSyncs) / float64(m),
	}
	if d.Updates > 0 {
		r.HOTUpdatePercent = 100 * float64(d.HOTUpdates) / float64(d.Updates)
	}
	b.report.Pipeline = r
	return nil
}
