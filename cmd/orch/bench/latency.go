package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

// latency measures create→claimed with 1, 10, 100... simulated agents
// behind the coordinator process: the time from a task's INSERT to the
// agent's claim, both by the database's clock. Submissions are paced at
// --latency-rate, one at a time, so each task finds an idle pipeline and the
// figure is the wake-up path (NOTIFY → pass → NOTIFY → claim), not a queue.
func (b *bench) latency(ctx context.Context) error {
	_, client, err := b.coordinatorClient(ctx)
	if err != nil {
		return err
	}
	for _, n := range b.opts.LatencyAgents {
		r, err := b.latencyOnce(ctx, client, n)
		if err != nil {
			return fmt.Errorf("%d agents: %w", n, err)
		}
		b.report.Latency = append(b.report.Latency, r)
	}
	return nil
}

func (b *bench) latencyOnce(ctx context.Context, client *coordinator.Client, n int) (LatencyResult, error) {
	f, err := b.newFleet(ctx, fmt.Sprintf("lat%d", n), n)
	if err != nil {
		return LatencyResult{}, err
	}
	defer f.stop()
	f.start(ctx)
	// The agents' LISTEN connections must be up before the first task.
	if b.postmaster != 0 {
		if _, err := b.settle(ctx); err != nil {
			return LatencyResult{}, err
		}
	} else if !sleepCtx(ctx, 2*time.Second+time.Duration(n)*20*time.Millisecond) {
		return LatencyResult{}, ctx.Err()
	}
	live0, err := b.store.LiveTasks(ctx, math.MaxInt32)
	if err != nil {
		return LatencyResult{}, err
	}
	m := b.opts.LatencyTasks
	interval := time.Duration(float64(time.Second) / b.opts.LatencyRate)
	req := simRequest("100m", "-exit", "0")
	ids := make([]uuid.UUID, 0, m)
	next := time.Now()
	for i := 0; i < m; i++ {
		if !sleepCtx(ctx, time.Until(next)) {
			return LatencyResult{}, ctx.Err()
		}
		t, err := client.CreateTask(ctx, req)
		if err != nil {
			return LatencyResult{}, fmt.Errorf("creating task: %w", err)
		}
		ids = append(ids, t.ID)
		// A slow answer delays the next submission instead of bunching it.
		if next = next.Add(interval); next.Before(time.Now()) {
			next = time.Now()
		}
	}
	if err := b.waitFinished(ctx, ids, live0, phaseTimeout(m)); err != nil {
		return LatencyResult{}, err
	}
	lat, err := b.store.StateLatencies(ctx, ids, queue.Starting)
	if err != nil {
		return LatencyResult{}, err
	}
	if len(lat) != m {
		return LatencyResult{}, fmt.Errorf("%d of %d tasks were claimed", len(lat), m)
	}
	if err := f.retire(ctx); err != nil {
		return LatencyResult{}, err
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return LatencyResult{
		Agents: n, Tasks: m, RatePerSec: b.opts.LatencyRate,
		P50MS:  ms(percentile(lat, 50)),
		P99MS:  ms(percentile(lat, 99)),
		MaxMS:  ms(percentile(lat, 100)),
		MeanMS: ms(sum) / float64(len(lat)),
	}, nil
}
