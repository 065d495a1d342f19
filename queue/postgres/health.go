package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

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
}

// beatSQL records a heartbeat and the engine's health in one statement,
// returning the state the node had before. It commits asynchronously, as
// every heartbeat does (see asyncCommitCTE): the next beat repeats it. A node that comes back (from
// down or unhealthy) to ready wakes the schedulers: there is room again.
const beatSQL = `
WITH ` + asyncCommitCTE + `, old AS (
    SELECT id, state FROM nodes WHERE id = $1 FOR UPDATE
), upd AS (
    UPDATE nodes n SET
        last_heartbeat = now(),
        state = $2::text,
        health_error = $3::text,
        state_changed_at = CASE WHEN n.state <> $2::text THEN now() ELSE n.state_changed_at END,
        engine_down_since = CASE WHEN NOT $4::bool THEN NULL
                                 ELSE COALESCE(n.engine_down_since, now() - make_interval(secs => $5::float8)) END,
        heartbeat_interval_ms = greatest($6::int, (SELECT interval_ms FROM heartbeat_policy)),
        updated_at = now()
    FROM old WHERE n.id = old.id
    RETURNING old.state AS was, n.draining, n.heartbeat_interval_ms
)
SELECT was, draining, heartbeat_interval_ms,
    CASE WHEN was <> 'ready' AND $2::text = 'ready' THEN pg_notify('` + ChannelPending + `', '')::text END
FROM upd, async_commit`

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
}

// Beat is one heartbeat of the node's agent: it is alive, and its container
// engine works (the node is ready) or fails (the node is unhealthy, with the
// problem as the reason, and gets no new work). every is the agent's own
// heartbeat interval; the result says when to beat next.
func (s *Store) Beat(ctx context.Context, node uuid.UUID, h NodeHealth, every time.Duration) (BeatResult, error) {
	state := queue.NodeReady
	if h.Problem != "" {
		state = queue.NodeUnhealthy
	}
	var r BeatResult
	var ignored *string
	var intervalMS int32
	down := max(h.EngineDownFor, 0).Seconds()
	err := s.pool.QueryRow(ctx, beatSQL, node, string(state), h.Problem, h.EngineDown && h.Problem != "", down,
		max(every.Milliseconds(), 1)).Scan(&r.Was, &r.Draining, &intervalMS, &ignored)
	if err != nil {
		return BeatResult{}, translate(err, fmt.Sprintf("heartbeat of node %s", node))
	}
	r.Interval = time.Duration(intervalMS) * time.Millisecond
	return r, nil
}

// SetTaskHealth records what the lease's health check found. It is fenced
// like every agent write, and only applies to a running task; it is not a
// state change, so it writes no event (what the health check does to the
// task — a restart — is one).
func (s *Store) SetTaskHealth(ctx context.Context, l queue.Lease, h queue.TaskHealth, detail string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE tasks SET health = $4, health_detail = $5,
    health_at = CASE WHEN health <> $4 THEN now() ELSE health_at END, updated_at = now()
WHERE id = $1 AND attempt = $2 AND node_id = $3 AND state = 'running'`, l.TaskID, l.Attempt, l.NodeID, string(h), detail)
	if err != nil {
		return translate(err, fmt.Sprintf("recording health of task %s", l.TaskID))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("health of task %s attempt %d: %w", l.TaskID, l.Attempt, queue.ErrNotOwner)
	}
	return nil
}
