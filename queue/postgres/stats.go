package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// DefaultStatsRetention is how long node and task stats history is kept
// unless SetStatsRetention says otherwise.
const DefaultStatsRetention = 24 * time.Hour

// observability holds the stats writers' settings. They are atomics so that
// one Store may be shared by goroutines while a setting changes.
type observability struct {
	retention atomic.Int64 // nanoseconds; 0 means DefaultStatsRetention
}

// SetStatsRetention bounds the stats history: each write of a node's or its
// tasks' stats deletes that node's rows older than d. d <= 0 restores the default.
func (s *Store) SetStatsRetention(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s.obs.retention.Store(int64(d))
}

// statsRetention is the retention in force.
func (s *Store) statsRetention() time.Duration {
	if d := time.Duration(s.obs.retention.Load()); d > 0 {
		return d
	}
	return DefaultStatsRetention
}

// reportUsageSQL writes a node's latest usage onto its row, appends the
// sample to its history and prunes the history past the retention, in one
// statement, so the three never disagree. It commits asynchronously, as
// heartbeats do: a sample lost in a crash is followed by the next one.
//
// Samples are stamped with the database's clock, never the agent's: the
// history is pruned and compared by the database's, and a node whose clock
// ran ahead would otherwise keep its rows forever.
const reportUsageSQL = `
WITH ` + asyncCommitCTE + `, upd AS (
    UPDATE nodes SET cpu_percent = $2, load1 = $3, memory_used_bytes = $4, disk_used_bytes = $5,
        usage_at = now()
    WHERE id = $1
    RETURNING id, usage_at
), ins AS (
    INSERT INTO node_stats (node_id, at, cpu_percent, load1, memory_used_bytes, memory_total_bytes,
                            disk_used_bytes, disk_total_bytes)
    SELECT id, usage_at, $2, $3, $4, $6, $5, $7 FROM upd
), prune AS (
    DELETE FROM node_stats WHERE node_id = $1 AND at < now() - make_interval(secs => $8::float8)
)
SELECT count(*) FROM upd, async_commit`

// ReportUsage records what a node's agent measured on its machine: the
// latest figures on the node (queue.Node.Usage) and a row of its history,
// from which rows older than the retention are dropped. The sample is
// stamped with the database's clock (u.At is ignored). The agent sends
// these figures with its heartbeat instead (NodeHealth.Usage), in the same
// statement; ReportUsage writes them alone.
func (s *Store) ReportUsage(ctx context.Context, node uuid.UUID, u queue.Usage) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int
	err := s.pool.QueryRow(ctx, reportUsageSQL, node, u.CPUPercent, u.Load1, u.MemoryUsedBytes, u.DiskUsedBytes,
		u.MemoryTotalBytes, u.DiskTotalBytes, s.statsRetention().Seconds()).Scan(&n)
	if err != nil {
		return translate(err, "reporting node usage")
	}
	if n == 0 {
		return fmt.Errorf("reporting usage of node %s: %w", node, queue.ErrNotFound)
	}
	return nil
}

// reportTaskUsageSQL is fenced like every agent write about a task: a sample
// counts only while its attempt is running on this node. It commits
// asynchronously, as reportUsageSQL does, and stamps the samples with the
// database's clock as it does.
const reportTaskUsageSQL = `
WITH ` + asyncCommitCTE + `, s AS (
    SELECT task_id, attempt, now() AS at, cpu, mem, lim
    FROM unnest($2::uuid[], $3::int[], $4::real[], $5::bigint[], $6::bigint[])
        AS s(task_id, attempt, cpu, mem, lim)
), ok AS (
    SELECT s.* FROM s JOIN tasks t ON t.id = s.task_id AND t.attempt = s.attempt AND t.node_id = $1
    WHERE t.state = 'running'
), latest AS (
    INSERT INTO task_usage AS u (task_id, attempt, node_id, at, cpu_percent, memory_used_bytes, memory_limit_bytes)
    SELECT task_id, attempt, $1, at, cpu, mem, lim FROM ok
    ON CONFLICT (task_id) DO UPDATE SET attempt = EXCLUDED.attempt, node_id = EXCLUDED.node_id, at = EXCLUDED.at,
        cpu_percent = EXCLUDED.cpu_percent, memory_used_bytes = EXCLUDED.memory_used_bytes,
        memory_limit_bytes = EXCLUDED.memory_limit_bytes
), hist AS (
    INSERT INTO task_stats (task_id, attempt, node_id, at, cpu_percent, memory_used_bytes, memory_limit_bytes)
    SELECT task_id, attempt, $1, at, cpu, mem, lim FROM ok
), prune AS (
    DELETE FROM task_stats WHERE node_id = $1 AND at < now() - make_interval(secs => $7::float8)
)
SELECT count(*) FROM ok, async_commit`

// ReportTaskUsage records what the agent of node measured of its tasks'
// containers, in one statement for all of them. A sample whose attempt is
// not running on node any more is ignored; it returns how many counted.
func (s *Store) ReportTaskUsage(ctx context.Context, node uuid.UUID, samples []queue.TaskUsage) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	seen := make(map[uuid.UUID]bool, len(samples))
	var ids []uuid.UUID
	var attempts []int32
	var cpus []float32
	var mems, lims []int64
	for _, u := range samples {
		if seen[u.TaskID] { // one row per task: ON CONFLICT cannot take two
			continue
		}
		seen[u.TaskID] = true
		ids = append(ids, u.TaskID)
		attempts = append(attempts, int32(u.Attempt))
		cpus = append(cpus, float32(u.CPUPercent))
		mems = append(mems, u.MemoryUsedBytes)
		lims = append(lims, u.MemoryLimitBytes)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int
	err := s.pool.QueryRow(ctx, reportTaskUsageSQL, node, ids, attempts, cpus, mems, lims,
		s.statsRetention().Seconds()).Scan(&n)
	if err != nil {
		return 0, translate(err, "reporting task usage")
	}
	return n, nil
}

// historyLimit is how many samples of a history a read returns: limit, or
// 10,000 when it is not in 1..10,000.
func historyLimit(limit int) int {
	if limit <= 0 || limit > 10000 {
		return 10000
	}
	return limit
}

// NodeStats returns a node's usage history, newest first, at most limit rows.
func (s *Store) NodeStats(ctx context.Context, node uuid.UUID, limit int) ([]queue.NodeSample, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "reading node stats", scanNodeSample,
		`
SELECT at, cpu_percent, load1, memory_used_bytes, memory_total_bytes, disk_used_bytes, disk_total_bytes
FROM node_stats WHERE node_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, node, historyLimit(limit))
}

const taskUsageCols = `task_id, attempt, at, cpu_percent, memory_used_bytes, memory_limit_bytes`

func scanTaskUsage(r pgx.Row) (queue.TaskUsage, error) {
	var u queue.TaskUsage
	err := r.Scan(&u.TaskID, &u.Attempt, &u.At, &u.CPUPercent, &u.MemoryUsedBytes, &u.MemoryLimitBytes)
	return u, err
}

// TaskUsage returns the latest measured usage of a task, or nil when none
// was measured.
func (s *Store) TaskUsage(ctx context.Context, task uuid.UUID) (*queue.TaskUsage, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	u, err := scanTaskUsage(s.pool.QueryRow(ctx, `SELECT `+taskUsageCols+` FROM task_usage WHERE task_id = $1`, task))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err, "reading task usage")
	}
	return &u, nil
}

// TaskStats returns a task's usage history, newest first, at most limit rows.
func (s *Store) TaskStats(ctx context.Context, task uuid.UUID, limit int) ([]queue.TaskUsage, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "reading task stats", scanTaskUsage,
		`SELECT `+taskUsageCols+` FROM task_stats WHERE task_id = $1
ORDER BY at DESC, id DESC LIMIT $2`, task, historyLimit(limit))
}

// LatestNodeSamples returns each node's newest sample, by node id; nodes
// that never reported are missing.
func (s *Store) LatestNodeSamples(ctx context.Context) (map[uuid.UUID]queue.NodeSample, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
SELECT n.id, x.at, x.cpu_percent, x.load1, x.memory_used_bytes, x.memory_total_bytes, x.disk_used_bytes, x.disk_total_bytes
FROM nodes n CROSS JOIN LATERAL (
    SELECT * FROM node_stats s WHERE s.node_id = n.id ORDER BY s.at DESC LIMIT 1
) x`)
	if err != nil {
		return nil, translate(err, "reading node stats")
	}
	defer rows.Close()
	out := map[uuid.UUID]queue.NodeSample{}
	for rows.Next() {
		var id uuid.UUID
		var x queue.NodeSample
		if err := rows.Scan(&id, &x.At, &x.CPUPercent, &x.Load1, &x.MemoryUsedBytes, &x.MemoryTotalBytes, &x.DiskUsedBytes, &x.DiskTotalBytes); err != nil {
			return nil, translate(err, "reading node stats")
		}
		out[id] = x
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "reading node stats")
	}
	return out, nil
}

// scanNodeSample scans a row of node_stats (NodeStats).
func scanNodeSample(r pgx.Row) (queue.NodeSample, error) {
	var x queue.NodeSample
	err := r.Scan(&x.At, &x.CPUPercent, &x.Load1, &x.MemoryUsedBytes, &x.MemoryTotalBytes, &x.DiskUsedBytes, &x.DiskTotalBytes)
	return x, err
}
