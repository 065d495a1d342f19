package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// This file holds what `orch bench` reads to measure orch: write counters,
// latencies by the database's clock, and the server's statement statistics.
// None of it is on a hot path.

// Activity is a snapshot of how much the database has written. The
// difference between two snapshots is what the work in between cost.
type Activity struct {
	// NextXID is the next transaction id. Only transactions that write take
	// one, so the difference counts write transactions exactly, at once.
	NextXID int64
	// WALBytes is the position in the write-ahead log: the difference is
	// the bytes of WAL written, by anyone.
	WALBytes int64
	// Commits is pg_stat_database.xact_commit: every transaction, reads
	// included.
	Commits int64
	// WALSyncs counts WAL flushes to disk (pg_stat_wal.wal_sync), server-wide.
	WALSyncs int64
	// RowsWritten, Updates and HOTUpdates sum pg_stat_user_tables over the
	// schema's tables (pgbench's excepted): inserted, updated and deleted
	// rows; updates; and updates that were heap-only (no index touched).
	RowsWritten, Updates, HOTUpdates int64
}

// Commits, WAL flushes and table counters are flushed by each backend lazily (at most
// once a second while busy, within 10 s once idle, and when it exits), so
// they are exact only once the connections that did the work are closed or
// have been idle for a while. NextXID and WALBytes are exact at once.
const activitySQL = `
SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
       pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
       (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
       (SELECT wal_sync FROM pg_stat_wal),
       coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint,
       coalesce(sum(n_tup_upd), 0)::bigint,
       coalesce(sum(n_tup_hot_upd), 0)::bigint
FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname NOT LIKE 'pgbench\_%'`

// Activity reads the database's write counters.
func (s *Store) Activity(ctx context.Context) (Activity, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var a Activity
	err := s.pool.QueryRow(ctx, activitySQL).Scan(&a.NextXID, &a.WALBytes, &a.Commits, &a.WALSyncs, &a.RowsWritten, &a.Updates, &a.HOTUpdates)
	if err != nil {
		return Activity{}, translate(err, "reading write counters")
	}
	return a, nil
}

// Sub returns a − b, counter by counter.
func (a Activity) Sub(b Activity) Activity {
	return Activity{
		NextXID: a.NextXID - b.NextXID, WALBytes: a.WALBytes - b.WALBytes, Commits: a.Commits - b.Commits,
		WALSyncs:    a.WALSyncs - b.WALSyncs,
		RowsWritten: a.RowsWritten - b.RowsWritten, Updates: a.Updates - b.Updates, HOTUpdates: a.HOTUpdates - b.HOTUpdates,
	}
}

// ServerInfo describes the server a store is connected to.
type ServerInfo struct {
	Version string
	// BackendPID is the server process serving the query; its parent is
	// the postmaster, which is how a benchmark on the same machine finds the
	// server's processes in /proc.
	BackendPID int
	// Settings holds a few settings that decide what figures mean.
	Settings map[string]string
}

// ServerInfo reads the server's version, a backend pid and the settings
// that matter for benchmarks.
func (s *Store) ServerInfo(ctx context.Context) (ServerInfo, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	info := ServerInfo{Settings: map[string]string{}}
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('server_version'), pg_backend_pid()`).Scan(&info.Version, &info.BackendPID); err != nil {
		return ServerInfo{}, translate(err, "reading server version")
	}
	rows, err := s.pool.Query(ctx, `SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name = ANY($1)`,
		[]string{"fsync", "synchronous_commit", "max_connections", "shared_buffers", "shared_preload_libraries"})
	if err != nil {
		return ServerInfo{}, translate(err, "reading server settings")
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return ServerInfo{}, translate(err, "reading server settings")
		}
		info.Settings[k] = v
	}
	return info, translate(rows.Err(), "reading server settings")
}

// StateLatencies returns, for each of the tasks ids that has reached state
// to, the time from its creation to its first event into that state, by the
// database's clock (both are transaction start times).
func (s *Store) StateLatencies(ctx context.Context, ids []uuid.UUID, to queue.State) ([]time.Duration, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
SELECT extract(epoch FROM min(e.at) - t.created_at)::float8
FROM tasks t JOIN task_events e ON e.task_id = t.id AND e.to_state = $2
WHERE t.id = ANY($1)
GROUP BY t.id, t.created_at`, ids, string(to))
	if err != nil {
		return nil, translate(err, "reading latencies")
	}
	secs, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return nil, translate(err, "reading latencies")
	}
	out := make([]time.Duration, len(secs))
	for i, s := range secs {
		out[i] = time.Duration(s * float64(time.Second))
	}
	return out, nil
}

// TaskSpan says when the first of the tasks ids was created and the last of
// them finished (the database's clock), and how many have finished.
func (s *Store) TaskSpan(ctx context.Context, ids []uuid.UUID) (first, last time.Time, finished int, err error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var lastp *time.Time
	err = s.pool.QueryRow(ctx, `SELECT min(created_at), max(finished_at), count(finished_at) FROM tasks WHERE id = ANY($1)`,
		ids).Scan(&first, &lastp, &finished)
	if err != nil {
		return time.Time{}, time.Time{}, 0, translate(err, "reading task span")
	}
	if lastp != nil {
		last = *lastp
	}
	return first, last, finished, nil
}

// liveAtMostSQL counts the tasks that are not over, but stops at $1: it is
// polled while tens of thousands may be live, and reads each of the partial
// indexes on live states only as far as it needs to.
const liveAtMostSQL = `SELECT count(*) FROM (
    (SELECT 1 FROM tasks WHERE state = 'pending' LIMIT $1)
    UNION ALL
    (SELECT 1 FROM tasks WHERE state IN ('scheduled', 'starting', 'running') LIMIT $1)
    LIMIT $1) live`

// LiveTasks returns how many tasks are pending, scheduled, starting or
// running, counting no further than atMost.
func (s *Store) LiveTasks(ctx context.Context, atMost int) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int
	if err := s.pool.QueryRow(ctx, liveAtMostSQL, atMost).Scan(&n); err != nil {
		return 0, translate(err, "counting live tasks")
	}
	return n, nil
}

// WaitEvents counts the database's active backends by what they wait for
// right now ("CPU" when they wait for nothing): sampled often, it shows
// where a workload spends its time (lock, WAL flush, I/O or CPU).
func (s *Store) WaitEvents(ctx context.Context) (map[string]int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*)
FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
GROUP BY 1`)
	if err != nil {
		return nil, translate(err, "sampling wait events")
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ev string
		var n int
		if err := rows.Scan(&ev, &n); err != nil {
			return nil, translate(err, "sampling wait events")
		}
		out[ev] = n
	}
	return out, translate(rows.Err(), "sampling wait events")
}

// StatementStat is one statement's line in pg_stat_statements.
type StatementStat struct {
	Query   string  `json:"query"`
	Calls   int64   `json:"calls"`
	TotalMS float64 `json:"total_ms"`
	MeanMS  float64 `json:"mean_ms"`
	Rows    int64   `json:"rows"`
}

// ResetStatements creates the pg_stat_statements extension if needed and
// clears its counts. It fails when the server did not preload the library
// (shared_preload_libraries).
func (s *Store) ResetStatements(ctx context.Context) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return translate(err, "enabling pg_stat_statements")
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		return translate(err, "resetting pg_stat_statements")
	}
	return nil
}

// TopStatements returns the n statements of this database that took the
// most execution time since ResetStatements.
func (s *Store) TopStatements(ctx context.Context, n int) ([]StatementStat, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
SELECT regexp_replace(query, '\s+', ' ', 'g'), calls, total_exec_time, mean_exec_time, rows
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT LIKE '%pg\_stat\_%' -- the measurements themselves
ORDER BY total_exec_time DESC LIMIT $1`, n)
	if err != nil {
		return nil, translate(err, "reading pg_stat_statements")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StatementStat, error) {
		var st StatementStat
		err := r.Scan(&st.Query, &st.Calls, &st.TotalMS, &st.MeanMS, &st.Rows)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading pg_stat_statements: %w", err)
	}
	return out, nil
}

// Notify sends one notification on channel, in a transaction of its own.
// Benchmarks use it to measure what a notification costs the server.
func (s *Store) Notify(ctx context.Context, channel string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, '')`, channel)
	return translate(err, "notifying")
}

// SeedFinishedTasks inserts n tasks of image that ended ago, each with the
// two events of its life that matter here (created, completed), in chunks:
// the history a cluster accumulates, for the retention benchmark.
func (s *Store) SeedFinishedTasks(ctx context.Context, image string, n int, ago time.Duration, progress func(done int)) error {
	const chunk = 50_000
	for done := 0; done < n; done += chunk {
		k := min(chunk, n-done)
		cctx, cancel := s.deadline(ctx)
		_, err := s.pool.Exec(cctx, `
WITH ins AS (
    INSERT INTO tasks (id, name, image, state, attempt, exit_code, created_at, updated_at, started_at, finished_at)
    SELECT gen_random_uuid(), 'seed-' || i, $1, 'completed', 1, 0, f - interval '1 minute', f, f - interval '50 seconds', f
    FROM generate_series(1, $2::int) i, LATERAL (SELECT now() - make_interval(secs => $3::float8) - make_interval(secs => i / 1000.0) AS f) t
    RETURNING id, created_at, finished_at
)
INSERT INTO task_events (task_id, at, from_state, to_state, attempt, reason)
SELECT id, created_at, NULL, 'pending', 0, 'created' FROM ins
UNION ALL
SELECT id, finished_at, 'running', 'completed', 1, 'exited with code 0' FROM ins`, image, k, ago.Seconds())
		cancel()
		if err != nil {
			return translate(err, "seeding finished tasks")
		}
		if progress != nil {
			progress(done + k)
		}
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `ANALYZE tasks; ANALYZE task_events`)
	return translate(err, "analyzing")
}

// SeedWaitingRestarts inserts n pending tasks of image that wait out a
// restart's backoff for another wait, as a crash-looping fleet leaves them,
// for the retention benchmark.
func (s *Store) SeedWaitingRestarts(ctx context.Context, image string, n int, wait time.Duration) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `
INSERT INTO tasks (id, name, image, cpu_millis, restarts, created_at, queued_at, not_before)
SELECT gen_random_uuid(), 'waiting-' || i, $1, 100, 1, now() - interval '1 hour',
       now() + make_interval(secs => $3::float8), now() + make_interval(secs => $3::float8)
FROM generate_series(1, $2::int) i`, image, n, wait.Seconds())
	if err != nil {
		return translate(err, "seeding restarts in backoff")
	}
	_, err = s.pool.Exec(ctx, `ANALYZE tasks`)
	return translate(err, "analyzing")
}

// DeletePendingTasks deletes the pending tasks of image (and their
// events), to leave no benchmark's backlog behind.
func (s *Store) DeletePendingTasks(ctx context.Context, image string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `
WITH doomed AS (SELECT id FROM tasks WHERE image = $1 AND state = 'pending'),
ev AS (DELETE FROM task_events e USING doomed d WHERE e.task_id = d.id)
DELETE FROM tasks t USING doomed d WHERE t.id = d.id`, image)
	return translate(err, "deleting pending tasks")
}

// Progress is how far a group of tasks has come, by the database's clock.
type Progress struct {
	// Now is the database's clock when it was read.
	Now time.Time
	// Tasks is the group's size; Placed how many of them were placed,
	// Running how many run and are meant to.
	Tasks, Placed, Running int
	// LastPlaced and LastStarted are the latest placement and start in
	// the group (the Unix epoch: none yet).
	LastPlaced, LastStarted time.Time
	// Deployed counts the jobs whose deployment of the version succeeded,
	// and LastDeployed is when the latest of them did; Outdated counts the
	// jobs' live tasks of other versions (for JobsProgress only).
	Deployed     int
	LastDeployed time.Time
	Outdated     int
}

const progressCols = `now(), count(*), count(t.scheduled_at),
    count(*) FILTER (WHERE t.state = 'running' AND t.desired_state = 'running'),
    COALESCE(max(t.scheduled_at), 'epoch'), COALESCE(max(t.started_at), 'epoch')`

// TasksProgress reads how far the tasks ids have come.
func (s *Store) TasksProgress(ctx context.Context, ids []uuid.UUID) (Progress, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var p Progress
	err := s.pool.QueryRow(ctx, `SELECT `+progressCols+` FROM tasks t WHERE t.id = ANY($1)`, ids).
		Scan(&p.Now, &p.Tasks, &p.Placed, &p.Running, &p.LastPlaced, &p.LastStarted)
	return p, translate(err, "reading progress")
}

// JobsProgress reads how far the tasks of version of the jobs ids have
// come, how many of the jobs have deployed it, and how many tasks of other
// versions still live.
func (s *Store) JobsProgress(ctx context.Context, ids []uuid.UUID, version int) (Progress, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var p Progress
	err := s.pool.QueryRow(ctx, `SELECT `+progressCols+`,
    (SELECT count(*) FROM deployments d WHERE d.job_id = ANY($1) AND d.version = $2 AND d.state = 'successful'),
    (SELECT COALESCE(max(d.ended_at), 'epoch') FROM deployments d WHERE d.job_id = ANY($1) AND d.version = $2 AND d.state = 'successful'),
    (SELECT count(*) FROM tasks o WHERE o.job_id = ANY($1) AND o.job_version <> $2 AND o.state NOT IN ('completed', 'failed', 'stopped'))
FROM tasks t WHERE t.job_id = ANY($1) AND t.job_version = $2`, ids, version).
		Scan(&p.Now, &p.Tasks, &p.Placed, &p.Running, &p.LastPlaced, &p.LastStarted, &p.Deployed, &p.LastDeployed, &p.Outdated)
	return p, translate(err, "reading job progress")
}

// Now reads the database's clock, against which Progress is measured.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var now time.Time
	err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now)
	return now, translate(err, "reading the clock")
}

// ClientBackends counts the server's client backends, every database's:
// what a fleet costs PostgreSQL in processes, whatever stands in between.
func (s *Store) ClientBackends(ctx context.Context) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'`).Scan(&n)
	return n, translate(err, "counting client backends")
}
