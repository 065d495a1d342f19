package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// RetentionResult is what the retention phase measured: a database holding
// a long history of finished tasks, its deletion by the coordinators'
// retention, and a queue full of restarts waiting out their backoff.
type RetentionResult struct {
	FinishedTasks int     `json:"finished_tasks"`
	SeedPerSec    float64 `json:"seed_tasks_per_s"`
	// ScrapeFirstMS is the first /metrics scrape, before the finished-task
	// counts were ever brought forward (it counts them all, once);
	// ScrapeP50MS and ScrapeMaxMS are the scrapes after.
	ScrapeFirstMS float64 `json:"scrape_first_ms"`
	ScrapeP50MS   float64 `json:"scrape_p50_ms"`
	ScrapeMaxMS   float64 `json:"scrape_max_ms"`
	// Deleted tasks, and how fast the retention deleted them while
	// placements went on.
	Deleted       int     `json:"deleted"`
	DeletedPerSec float64 `json:"deleted_per_s"`
	// Scheduling passes (each placing a fresh batch) before and while the
	// retention deletes.
	PassesBefore    int     `json:"passes_before"`
	PassP50BeforeMS float64 `json:"pass_p50_before_ms"`
	PassP99BeforeMS float64 `json:"pass_p99_before_ms"`
	PassesDuring    int     `json:"passes_during"`
	PassP50DuringMS float64 `json:"pass_p50_during_ms"`
	PassP99DuringMS float64 `json:"pass_p99_during_ms"`
	// A pass placing Ready tasks behind Waiting restarts in backoff, and
	// the same without them (medians of several).
	Waiting              int     `json:"waiting_restarts"`
	Ready                int     `json:"ready"`
	PassWithWaitingMS    float64 `json:"pass_with_waiting_ms"`
	PassWithoutWaitingMS float64 `json:"pass_without_waiting_ms"`
}

// retention measures what a long history costs: it seeds RetentionTasks
// finished tasks (older than the retention), times /metrics scrapes over
// them, lets the retention delete them while a coordinator places batches
// of tasks, and times a scheduling pass behind a crowd of restarts waiting
// out their backoff.
func (b *bench) retention(ctx context.Context) error {
	// The coordinator process of the earlier phases would place the
	// phase's tasks with its own passes, under the ones being timed.
	b.stopCoordinator()
	n := b.opts.RetentionTasks
	res := &RetentionResult{FinishedTasks: n}
	img := "orch-bench-retention-" + b.id
	start := time.Now()
	err := b.store.SeedFinishedTasks(ctx, img, n, 30*24*time.Hour, func(done int) {
		b.logf("retention: %d of %d finished tasks stored", done, n)
	})
	if err != nil {
		return err
	}
	res.SeedPerSec = perSecond(n, time.Since(start))

	f, err := b.newFleet(ctx, "ret", 4)
	if err != nil {
		return err
	}
	defer f.stop()
	c, err := coordinator.New(b.store, coordinator.Options{Strategy: b.opts.Strategy, NodeDownTimeout: time.Hour,
		Name: "bench retention", Logger: quietLogger(b.logw), Retention: postgres.DefaultRetention})
	if err != nil {
		return err
	}
	h := c.Handler()
	scrape := func() (time.Duration, error) {
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			return 0, fmt.Errorf("GET /metrics: %d", rec.Code)
		}
		return time.Since(t0), nil
	}
	first, err := scrape()
	if err != nil {
		return err
	}
	res.ScrapeFirstMS = ms(first)
	if _, err := b.store.RefreshTaskCounts(ctx, 0); err != nil {
		return err
	}
	var scrapes []time.Duration
	for range 20 {
		d, err := scrape()
		if err != nil {
			return err
		}
		scrapes = append(scrapes, d)
	}
	res.ScrapeP50MS, res.ScrapeMaxMS = ms(percentile(scrapes, 50)), ms(percentile(scrapes, 100))

	// Placements before and while the retention deletes.
	placeImg := img + "-placed"
	before, err := b.placeBatches(ctx, c, placeImg, b.opts.RetentionPasses, nil)
	if err != nil {
		return err
	}
	var deleted int
	var deleteDur time.Duration
	var delErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		t0 := time.Now()
		for ctx.Err() == nil {
			k, err := b.store.ExpireTasks(ctx, postgres.DefaultRetention, 500)
			if err != nil {
				delErr = err
				return
			}
			deleted += k
			if k < 500 {
				break
			}
		}
		deleteDur = time.Since(t0)
	}()
	during, err := b.placeBatches(ctx, c, placeImg, 0, done)
	<-done
	if err != nil {
		return err
	}
	if delErr != nil {
		return delErr
	}
	res.Deleted, res.DeletedPerSec = deleted, perSecond(deleted, deleteDur)
	res.PassesBefore, res.PassP50BeforeMS, res.PassP99BeforeMS = len(before), ms(percentile(before, 50)), ms(percentile(before, 99))
	res.PassesDuring, res.PassP50DuringMS, res.PassP99DuringMS = len(during), ms(percentile(during, 50)), ms(percentile(during, 99))
	if deleted < n {
		return fmt.Errorf("the retention deleted %d of %d expired tasks", deleted, n)
	}

	// A pass behind restarts waiting out their backoff, and without them,
	// one after the other so that neither gets the quieter moment.
	res.Waiting, res.Ready = b.opts.RetentionWaiting, 500
	var with, without []time.Duration
	for range 5 {
		if err := b.store.SeedWaitingRestarts(ctx, img+"-waiting", res.Waiting, time.Hour); err != nil {
			return err
		}
		d, err := b.placeBatch(ctx, c, placeImg, res.Ready)
		if err != nil {
			return err
		}
		with = append(with, d)
		if err := b.store.DeletePendingTasks(ctx, img+"-waiting"); err != nil {
			return err
		}
		if d, err = b.placeBatch(ctx, c, placeImg, res.Ready); err != nil {
			return err
		}
		without = append(without, d)
	}
	res.PassWithWaitingMS, res.PassWithoutWaitingMS = ms(percentile(with, 50)), ms(percentile(without, 50))
	b.report.Retention = res
	return f.retire(ctx)
}

// placeBatches has c place batches of 50 new tasks, one pass each, count
// times or (count 0) until stop closes, and returns each pass's duration.
// The placed tasks are stopped again (nothing runs them), so the nodes stay
// empty.
func (b *bench) placeBatches(ctx context.Context, c *coordinator.Coordinator, image string, count int, stop <-chan struct{}) ([]time.Duration, error) {
	var passes []time.Duration
	for {
		if stop != nil {
			select {
			case <-stop:
				return passes, nil
			default:
			}
		} else if len(passes) >= count {
			return passes, nil
		}
		d, err := b.placeBatch(ctx, c, image, 50)
		if err != nil {
			return nil, err
		}
		passes = append(passes, d)
	}
}

// placeBatch stores k tasks, times the one pass that places them, and
// stops them, one after the other: ending many tasks of one node at once
// would queue them on the node's row and measure that instead.
func (b *bench) placeBatch(ctx context.Context, c *coordinator.Coordinator, image string, k int) (time.Duration, error) {
	spec := simSpec("-sleep", "forever")
	spec.Image = image
	ids, _, err := b.createDirect(ctx, k, 8, spec)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	r, err := c.Pass(ctx)
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if r.Placed != k {
		return 0, fmt.Errorf("a pass placed %d of %d tasks (%+v)", r.Placed, k, r)
	}
	for _, id := range ids {
		if t, err := b.store.RequestStop(ctx, id, "bench"); err != nil || t.State != queue.Stopped {
			return 0, fmt.Errorf("stopping a placed task: %s, %v", t.State, err)
		}
	}
	return d, nil
}
