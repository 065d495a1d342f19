package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

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
// joining or leaving rarely changes it. It writes only when something
// changed, so replicas running it every sweep cost a read, and two of them
// racing agree (the second one's WHERE fails on the first one's row).
const policySQL = `
UPDATE heartbeat_policy p SET interval_ms = c.want, live_nodes = c.n, updated_at = now()
FROM (SELECT count(*)::int AS n,
             CASE WHEN $1::float8 > 0 THEN (ceil(count(*) * 10 / $1::float8) * 100)::int ELSE 0 END AS want
      FROM nodes WHERE state <> 'down') c
WHERE p.interval_ms <> c.want OR p.live_nodes <> c.n
RETURNING p.interval_ms, p.live_nodes, p.updated_at`

// UpdateHeartbeatPolicy scales the cluster's heartbeat interval to its live
// nodes, for at most perSecond heartbeats a second in all (0: agents keep
// their own intervals). It reports whether the interval changed, and the
// policy as it is now.
func (s *Store) UpdateHeartbeatPolicy(ctx context.Context, perSecond float64) (HeartbeatPolicy, bool, error) {
	var p HeartbeatPolicy
	var ms int32
	before, err := s.heartbeatPolicy(ctx)
	if err != nil {
		return p, false, err
	}
	err = s.pool.QueryRow(ctx, policySQL, max(perSecond, 0)).Scan(&ms, &p.LiveNodes, &p.UpdatedAt)
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
