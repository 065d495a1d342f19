package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/scheduler"
)

// benchSetup fills a fresh database with nodes ready nodes (128 cores,
// 512 GiB, two zones) and tasks pending tasks of mixed sizes that all fit,
// as CreateTask would leave them (with their created event), and analyzes
// the tables as autovacuum would have. It returns the database and how
// long inserting the tasks and their events took: writing a task row and an
// event row is about what placing one costs, so tasks/that time is the
// machine's floor for comparison, measured in the same run.
func benchSetup(b *testing.B, nodes, tasks int) (string, time.Duration) {
	b.Helper()
	url := pgtest.New(b)
	s := openStore(b, url)
	ctx := context.Background()
	var insert time.Duration
	for _, q := range []string{
		`INSERT INTO nodes (id, name, labels, cpu_millis, memory_bytes, disk_bytes)
		 SELECT gen_random_uuid(), 'node-' || lpad(i::text, 4, '0'),
		        jsonb_build_object('zone', CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END),
		        128000, 512::bigint << 30, 4::bigint << 40
		 FROM generate_series(1, $1::int) i, (SELECT $2::int) unused`,
		`WITH ins AS (
		     INSERT INTO tasks (id, name, image, cpu_millis, memory_bytes, disk_bytes, constraints, created_at, queued_at)
		     SELECT gen_random_uuid(), 'bench-' || i, 'x',
		            (ARRAY[100, 250, 500, 1000, 2000])[1 + i % 5],
		            (ARRAY[64::bigint << 20, 256::bigint << 20, 1::bigint << 30, 2::bigint << 30, 4::bigint << 30])[1 + (i / 5) % 5],
		            1::bigint << 30,
		            CASE WHEN i % 10 = 0 THEN '[{"key":"zone","op":"=","value":"eu"}]'::jsonb ELSE '[]' END,
		            now() + i * interval '1 microsecond', now() + i * interval '1 microsecond'
		     FROM generate_series(1, $2::int) i, (SELECT $1::int) unused
		     RETURNING id
		 )
		 INSERT INTO task_events (task_id, from_state, to_state, attempt, reason)
		 SELECT id, NULL, 'pending', 0, 'created' FROM ins`,
	} {
		start := time.Now()
		if _, err := s.pool.Exec(ctx, q, nodes, tasks); err != nil {
			b.Fatal(err)
		}
		insert = time.Since(start)
	}
	if _, err := s.pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	return url, insert
}

// BenchmarkSchedulePass places 100,000 pending tasks on 1,000 nodes through
// PostgreSQL with 1 and 3 replicas (each its own Store and pool, running
// passes until the queue is empty) and batches of 500 and 2,000 tasks per
// pass, and reports placements per second from the first pass to the last
// placement, next to the rate at which the same database inserted the
// 100,000 tasks with their events (inserts/s, the machine's floor in this
// run). The strategy is ORCH_BENCH_STRATEGY (default binpack). Run with
// -benchtime 1x: one iteration is the whole drain.
//
//	go test ./queue/postgres -run '^$' -bench SchedulePass -benchtime 1x
func BenchmarkSchedulePass(b *testing.B) {
	const nodesN, tasksN = 1000, 100_000
	strategy := os.Getenv("ORCH_BENCH_STRATEGY")
	if strategy == "" {
		strategy = "binpack"
	}
	batches := []int{500, 2000}
	if v, err := strconv.Atoi(os.Getenv("ORCH_BENCH_BATCH")); err == nil && v > 0 {
		batches = []int{v}
	}
	for _, batch := range batches {
		for _, replicas := range []int{1, 3} {
			b.Run(fmt.Sprintf("batch=%d/replicas=%d", batch, replicas), func(b *testing.B) {
				benchDrain(b, nodesN, tasksN, batch, replicas, strategy)
			})
		}
	}
}

func benchDrain(b *testing.B, nodesN, tasksN, batch, replicas int, strategy string) {
	var placed, rejected, passes atomic.Int64
	var elapsed, inserting time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		url, insert := benchSetup(b, nodesN, tasksN)
		inserting += insert
		stores := make([]*Store, replicas)
		for k := range stores {
			stores[k] = openStore(b, url)
		}
		sc, err := scheduler.New(strategy)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		g, ctx := errgroup.WithContext(context.Background())
		for k, st := range stores {
			opts := PassOpts{Batch: batch, By: fmt.Sprintf("bench-%d", k), Strategy: strategy, NodeTimeout: time.Hour}
			g.Go(func() error {
				for {
					res, err := st.SchedulePass(ctx, opts, sc.Plan)
					if err != nil {
						return err
					}
					passes.Add(1)
					placed.Add(int64(res.Placed))
					rejected.Add(int64(res.Rejected))
					if res.Considered == 0 {
						return nil
					}
				}
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		b.StopTimer()
	}
	if placed.Load() != int64(tasksN*b.N) {
		b.Fatalf("placed %d of %d", placed.Load(), tasksN*b.N)
	}
	b.ReportMetric(float64(placed.Load())/elapsed.Seconds(), "placements/s")
	b.ReportMetric(float64(tasksN*b.N)/inserting.Seconds(), "inserts/s")
	b.ReportMetric(float64(rejected.Load())/float64(b.N), "retried/op")
	b.ReportMetric(float64(passes.Load())/float64(b.N), "passes/op")
}
