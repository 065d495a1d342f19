package postgres

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// This file holds the heartbeat: an agent's Beat, and the cluster's
// heartbeat policy, which slows every agent's beat as the live nodes grow.

// BeatResult is what a heartbeat learns about the node.
type BeatResult struct {
	// Was is the node's state before the beat. NodeDown means the cluster
	// gave the node up meanwhile and moved its tasks: the agent must check
	// what it still owns before anything else.
	Was queue.NodeState
	// Draining says the node is being drained.
	Draining bool
	// Interval is when the agent must beat next: its own interval, or the
	// cluster's (heartbeat_policy) when that is longer.
	Interval time.Duration
	// DBTime is the database's clock as the beat was written. The agent
	// compares times the database stamped (a task's started_at) with its
	// own clock only through it, since the two clocks may differ.
	DBTime time.Time
	// Node is what the database holds for the node as the beat was
	// written, for an agent to check against what it knows without
	// asking again (00060_beat_digest.sql).
	Node NodeDigest
}

// NodeDigest sums up what the database holds for one node.
type NodeDigest struct {
	// Scheduled says tasks wait for the node's agent to claim them (not how
	// many: a backlog placed on a node may be thousands).
	Scheduled bool
	// Stops is how many of its starting or running tasks a user asked to
	// stop.
	Stops int
	// Leases is how many tasks are starting or running on the node, and
	// LeaseDigest their digest (LeaseDigest).
	Leases      int
	LeaseDigest int64
	// LeasesRead says Stops, Leases and LeaseDigest were read: a beat
	// whose agent said it was busy (NodeHealth.Busy) leaves them out.
	LeasesRead bool
	// VolumeDeletes is how many of its volumes wait to be deleted.
	VolumeDeletes int
}

// LeaseDigest is the digest of a set of leases that a heartbeat returns
// for the node's starting and running tasks: the XOR over them of the
// first 64 bits, big-endian, of md5("<task id>/<attempt>"). An agent
// XORs the digests of the leases it holds and compares.
func LeaseDigest(l queue.Lease) int64 {
	sum := md5.Sum([]byte(l.TaskID.String() + "/" + strconv.Itoa(l.Attempt)))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// beatSQL records a heartbeat, the engine's health and, when the agent
// sends one, the machine's latest usage in one statement, returning the
// state the node had before: orch_beat (00016_beat.sql, with the usage
// 00017_beat_usage.sql), whose plans each server connection keeps, so that
// a beat through a transaction pooler is not planned anew each time. It
// commits asynchronously, as every heartbeat does: the next beat repeats
// it. A node that comes back (from down or unhealthy) to ready wakes the
// schedulers: there is room again. The usage is written as reportUsageSQL
// writes it (the node's row, a node_stats row, the pruning past the
// retention, the database's clock): an idle agent's stats cost no
// statement of their own.
const beatSQL = `SELECT was, draining, heartbeat_interval_ms, db_time,
       scheduled, stops, leases, lease_digest, volume_deletes
FROM orch_beat($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

// NodeHealth is what an agent reports about its machine with a heartbeat.
type NodeHealth struct {
	// Problem is why the node should get no new work ("" when it is fine).
	Problem string
	// EngineDown says the container engine does not answer at all; if it
	// lasts, the node's tasks are moved (see EvacuateNode). EngineDownFor
	// is how long the agent has seen it so (a duration, so that the
	// agent's clock does not matter).
	EngineDown    bool
	EngineDownFor time.Duration
	// Usage, when not nil, is the machine's latest measurement, written
	// with the beat as ReportUsage writes it (Usage.At is ignored).
	Usage *queue.Usage
	// Busy says the agent has starts or stops under way, so that it will
	// not compare the node's leases with its own this time: the beat does
	// not read them (00062_beat_leases_when_asked.sql).
	Busy bool
}

// Beat is one heartbeat of the node's agent: it is alive, and its container
// engine works (the node is ready) or fails (the node is unhealthy, with the
// problem as the reason, and gets no new work), and, with h.Usage, what it
// measured of its machine. every is the agent's own heartbeat interval; the
// result says when to beat next.
func (s *Store) Beat(ctx context.Context, node uuid.UUID, h NodeHealth, every time.Duration) (BeatResult, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	state := queue.NodeReady
	if h.Problem != "" {
		state = queue.NodeUnhealthy
	}
	var r BeatResult
	var intervalMS, volumeDeletes int32
	var stops, leases *int32
	var leaseDigest *int64
	down := max(h.EngineDownFor, 0).Seconds()
	var cpu, load1 *float32
	var memUsed, memTotal, diskUsed, diskTotal *int64
	if u := h.Usage; u != nil {
		c, l := float32(u.CPUPercent), float32(u.Load1)
		cpu, load1 = &c, &l
		memUsed, memTotal, diskUsed, diskTotal = &u.MemoryUsedBytes, &u.MemoryTotalBytes, &u.DiskUsedBytes, &u.DiskTotalBytes
	}
	err := s.pool.QueryRow(ctx, beatSQL, node, string(state), h.Problem, h.EngineDown && h.Problem != "", down,
		int32(min(max(every.Milliseconds(), 1), math.MaxInt32)),
		cpu, load1, memUsed, memTotal, diskUsed, diskTotal, s.statsRetention().Seconds(), !h.Busy).
		Scan(&r.Was, &r.Draining, &intervalMS, &r.DBTime, &r.Node.Scheduled, &stops, &leases, &leaseDigest, &volumeDeletes)
	if err != nil {
		return BeatResult{}, translate(err, fmt.Sprintf("heartbeat of node %s", node))
	}
	r.Interval = time.Duration(intervalMS) * time.Millisecond
	r.Node.VolumeDeletes = int(volumeDeletes)
	if stops != nil && leases != nil && leaseDigest != nil {
		r.Node.Stops, r.Node.Leases, r.Node.LeaseDigest, r.Node.LeasesRead = int(*stops), int(*leases), *leaseDigest, true
	}
	return r, nil
}

// HeartbeatPolicy is the heartbeat interval the cluster asks of its agents
// (see 00008_heartbeat_policy.sql).
type HeartbeatPolicy struct {
	// Interval is the shortest interval an agent may beat at; 0 lets every
	// agent keep its own.
	Interval time.Duration `json:"interval"`
	// LiveNodes is how many nodes were not down when it was set.
	LiveNodes int       `json:"live_nodes"`
	UpdatedAt time.Time `json:"updated_at"`
}

// policySQL sets the interval at which all live nodes together beat at most
// $1 times a second, rounded up to a tenth of a second so that a node
// joining or leaving rarely changes it, but never longer than $2
// milliseconds (when $2 > 0): a node's loss is noticed within its interval
// and half the node-down timeout, so the longest interval bounds that
// time whatever the size of the cluster. It writes only when something
// changed, so replicas running it every sweep cost a read, and two of them
// racing agree (the second one's WHERE fails on the first one's row).
const policySQL = `
UPDATE heartbeat_policy p SET interval_ms = c.want, live_nodes = c.n, updated_at = now()
FROM (SELECT count(*)::int AS n,
             CASE WHEN $1::float8 > 0
                  THEN least(ceil(count(*) * 10 / $1::float8) * 100,
                             CASE WHEN $2::bigint > 0 THEN $2::bigint ELSE 2147483647 END)::int
                  ELSE 0 END AS want
      FROM nodes WHERE state <> 'down') c
WHERE p.interval_ms <> c.want OR p.live_nodes <> c.n
RETURNING p.interval_ms, p.live_nodes, p.updated_at`

// UpdateHeartbeatPolicy scales the cluster's heartbeat interval to its live
// nodes, for at most perSecond heartbeats a second in all (0: agents keep
// their own intervals), but to no longer than longest (0: no bound). It
// reports whether the interval changed, and the policy as it is now.
func (s *Store) UpdateHeartbeatPolicy(ctx context.Context, perSecond float64, longest time.Duration) (HeartbeatPolicy, bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var p HeartbeatPolicy
	var ms int32
	before, err := s.heartbeatPolicy(ctx)
	if err != nil {
		return p, false, err
	}
	err = s.pool.QueryRow(ctx, policySQL, max(perSecond, 0), max(longest.Milliseconds(), 0)).Scan(&ms, &p.LiveNodes, &p.UpdatedAt)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return before, false, nil
		}
		return p, false, translate(err, "updating the heartbeat policy")
	}
	p.Interval = time.Duration(ms) * time.Millisecond
	return p, p.Interval != before.Interval, nil
}

// heartbeatPolicy reads the cluster's heartbeat policy.
func (s *Store) heartbeatPolicy(ctx context.Context) (HeartbeatPolicy, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var p HeartbeatPolicy
	var ms int32
	err := s.pool.QueryRow(ctx, `SELECT interval_ms, live_nodes, updated_at FROM heartbeat_policy`).
		Scan(&ms, &p.LiveNodes, &p.UpdatedAt)
	if err != nil {
		return p, translate(err, "reading the heartbeat policy")
	}
	p.Interval = time.Duration(ms) * time.Millisecond
	return p, nil
}
