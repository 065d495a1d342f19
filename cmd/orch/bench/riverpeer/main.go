// Command riverpeer is the River side of `orch bench`'s peer-river phase:
// River (github.com/riverqueue/river), the Go job queue on PostgreSQL that
// orch's queue half is most like, works a backlog of no-op jobs against the
// same server as orch, and prints how fast.
//
// It is a module of its own so that River stays out of orch's binary and
// orch's go.mod; the bench builds and runs it. It works in a schema of its
// own (-schema, dropped at the end), inserts -jobs no-op jobs in batches of
// -batch with InsertManyFast, then starts one client with -workers workers
// and times it from its start until every job has completed. It prints one
// line of JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// noop is a job that does nothing: what is measured is the queue.
type noop struct{}

func (noop) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noop]
}

func (noopWorker) Work(context.Context, *river.Job[noop]) error { return nil }

// result is what the bench reads.
type result struct {
	Version       string  `json:"version"`
	Jobs          int     `json:"jobs"`
	Workers       int     `json:"workers"`
	InsertSeconds float64 `json:"insert_s"`
	WorkSeconds   float64 `json:"work_s"`
	JobsPerSec    float64 `json:"jobs_per_s"`
}

func main() {
	var (
		url     = flag.String("database-url", "", "PostgreSQL URL (required)")
		schema  = flag.String("schema", "river_peer", "schema River works in; created, and dropped at the end")
		jobs    = flag.Int("jobs", 50000, "no-op jobs to work")
		batch   = flag.Int("batch", 1000, "jobs inserted per InsertManyFast")
		workers = flag.Int("workers", 200, "workers of the one client")
	)
	flag.Parse()
	if err := run(*url, *schema, *jobs, *batch, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "riverpeer:", err)
		os.Exit(1)
	}
}

func run(url, schema string, jobs, batch, workers int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+ident+" CASCADE; CREATE SCHEMA "+ident); err != nil {
		return err
	}
	defer func() { _, _ = admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+ident+" CASCADE") }()

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = int32(max(workers/10, 10))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}

	ws := river.NewWorkers()
	river.AddWorker(ws, noopWorker{})
	client, err := river.NewClient(driver, &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers: ws,
	})
	if err != nil {
		return err
	}
	start := time.Now()
	for done := 0; done < jobs; done += batch {
		params := make([]river.InsertManyParams, min(batch, jobs-done))
		for i := range params {
			params[i] = river.InsertManyParams{Args: noop{}}
		}
		if _, err := client.InsertManyFast(ctx, params); err != nil {
			return fmt.Errorf("inserting: %w", err)
		}
	}
	insert := time.Since(start)

	completed, stop := client.Subscribe(river.EventKindJobCompleted)
	defer stop()
	start = time.Now()
	if err := client.Start(ctx); err != nil {
		return err
	}
	for n := 0; n < jobs; n++ {
		select {
		case <-completed:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d jobs completed: %w", n, jobs, ctx.Err())
		}
	}
	work := time.Since(start)
	stopCtx, cancelStop := context.WithTimeout(context.Background(), time.Minute)
	defer cancelStop()
	if err := client.Stop(stopCtx); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(result{
		Version: riverVersion(), Jobs: jobs, Workers: workers,
		InsertSeconds: insert.Seconds(), WorkSeconds: work.Seconds(), JobsPerSec: float64(jobs) / work.Seconds(),
	})
}
