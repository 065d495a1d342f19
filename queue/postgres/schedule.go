package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// PassOpts tune one scheduling pass.
type PassOpts struct {
	// Batch is how many pending tasks one pass locks and places.
	Batch int
	// NodeTimeout is how long a node may stay silent and still get work.
	NodeTimeout time.Duration
	// By names the scheduler in the events it writes.
	By string
	// Strategy is the coordinator's default strategy. The pass only needs
	// it to know whether a task of the batch will be placed round-robin, in
	// which case it holds the shared round-robin cursor until it commits.
	Strategy string
}

// PassResult says what a pass did.
type PassResult struct {
	Considered int // pending tasks the pass locked
	Placed     int
	Unplaced   int // no node fit; the reason is on the task
	Rejected   int // planned, but its node was taken or filled up meanwhile; retried next pass
}

// PlanFunc is the pure placement logic: it sees the locked pending tasks and
// a snapshot of every node and decides. It must not do I/O. The tasks carry
// what placement reads (see passTask), not their whole spec.
type PlanFunc func(tasks []queue.Task, snap queue.Snapshot) queue.Plan

// lockPendingSQL takes a batch of pending tasks that no other coordinator is
// placing right now; SKIP LOCKED lets replicas share the queue without waiting
// on each other, and a task is never in two passes at once. The queue is
// ordered by queued_at, which a pass moves to now() for every task it could
// not place, so tasks that fit nowhere rotate to the back (see 00002).
//
// It reads only what placement looks at (see passTask).
const lockPendingSQL = `SELECT t.id, t.name, t.cpu_millis, t.memory_bytes, t.disk_bytes, t.ports,
    t.strategy, t.constraints, t.created_at, t.privileged, t.network, t.volumes
FROM tasks t
WHERE t.state = 'pending' AND t.desired_state = 'running'
  AND t.queued_at <= now() -- a restart waiting out its backoff is queued at its end (transitionSQL)
  AND (t.not_before IS NULL OR t.not_before <= now())
ORDER BY t.queued_at, t.id LIMIT $1 FOR UPDATE SKIP LOCKED`

// passBeginSQL begins a scheduling pass's transaction and, in the same
// round trip, makes it commit without waiting for its WAL flush
// (asyncPassSQL) and turns JIT compilation off: its statements are short,
// and the planner's estimates for unnest and CTEs would otherwise have it
// compile some of them. A pass that finds nothing to place writes nothing,
// so the setting changes nothing for it.
const passBeginSQL = `BEGIN; ` + asyncPassSQL + `; SET LOCAL jit = off`

// asyncPassSQL makes a scheduling pass commit without waiting for its WAL
// flush, which takes one flush out of the path from a task's creation to its
// agent's claim (and lets the pass release the notification lock sooner).
// It is safe because nothing acts on a placement until it is durable: the
// agent acts only once its claim has committed, and flushing the claim's
// commit flushes all the WAL before it, the placement's included. Should the
// server crash before the flush, the whole pass is lost at once, as if it
// had not run: its tasks are pending again and the nodes' reservations are
// as they were, so the next pass places them afresh.
const asyncPassSQL = `SET LOCAL synchronous_commit = off`

const snapshotNodesSQL = liveSums + `SELECT ` + nodeCols + `,
    n.last_heartbeat < now() - node_silence_allowed(n.heartbeat_interval_ms, $1::float8)` + nodesFrom + ` ORDER BY n.id`

const snapshotPortsSQL = `SELECT node_id, protocol, host_port FROM node_ports`

// cursorSQL reads the round-robin cursor. A pass that will place tasks
// round-robin reads it FOR UPDATE, first in its snapshot: two such passes
// then take turns, and the second plans on a snapshot that already holds the
// first one's placements, so together they walk the ring once instead of
// both starting at the same node. Passes without round-robin tasks never
// wait on it.
const cursorSQL = `SELECT node_id FROM scheduler_cursor WHERE name = 'round-robin'`

const moveCursorSQL = `UPDATE scheduler_cursor SET node_id = $1 WHERE name = 'round-robin'`

// lockNodesSQL takes the nodes a pass is about to fill that no other
// transaction holds, and skips the others: a pass never waits for a node, so
// passes cannot deadlock on nodes, and two replicas that chose the same nodes
// split them instead of queueing on them (the one that skipped re-plans its
// tasks onto the nodes it can have).
//
// The locks are transaction-scoped advisory locks, not row locks on nodes:
// a row lock would make every heartbeat and stats write of those nodes wait
// for the pass's commit, and under load that wait reached the heartbeat's
// deadline (the bench's drain saw beats of 40 ms on average and some of 4 s).
// Two nodes whose ids hash alike share a lock, which only makes one pass
// skip a node it could have had.
const lockNodesSQL = `SELECT id FROM unnest($1::uuid[]) AS u(id)
WHERE pg_try_advisory_xact_lock(` + placeLockSQLClass + `, hashtext(id::text))`

// placeLockSQLClass is the first key of the advisory locks that give a pass
// the nodes it fills ("orch" in ASCII); the second is a hash of the node's id
// (nodeLockSQL).
const placeLockSQLClass = "1869767528"

// nodeLockSQL waits for the pass that is filling a node, if any, and keeps
// passes off the node until the transaction ends.
const nodeLockSQL = `SELECT pg_advisory_xact_lock(` + placeLockSQLClass + `, hashtext($1::uuid::text))`

// refreshNodesSQL re-reads nodes this pass holds, after its own placements.
const refreshNodesSQL = `SELECT ` + nodeCols + `,
    n.last_heartbeat < now() - node_silence_allowed(n.heartbeat_interval_ms, $1::float8)
FROM nodes n` + nodeJoin + ` WHERE n.id = ANY($2::uuid[]) ORDER BY n.id`

const refreshPortsSQL = `SELECT node_id, protocol, host_port FROM node_ports WHERE node_id = ANY($1::uuid[])`

// placeSQL commits placements onto nodes the pass holds (lockNodesSQL). It
// runs as a statement of its own after the lock, so it reads those nodes
// (and their node_ports) as of after every earlier placement on them
// committed, and nobody can add to them until this transaction ends (tasks
// that end meanwhile only free room). Under those locks it grants, per node,
// the planned tasks in plan order while their running total still fits under
// what the node has free right now (its capacity less its live tasks), and
// refuses a task whose host port is held on the node or wanted by an earlier
// task of the group. A replica that planned on a stale snapshot therefore
// cannot push a node over capacity or publish a port twice: what no longer
// fits is simply not granted, and the pass re-plans it on fresh figures.
// The primary key of node_ports backs the port check.
//
// The tasks' requests ($8..$10) and host ports ($5..$7) come in as arrays,
// read from the rows the pass has held locked since it read them, which
// saves looking the tasks up twice and keeps the planner's estimates sane.
// The agents of the nodes that got work are woken with one pg_notify per
// placed task; Postgres delivers identical notifications of one transaction
// once.
const placeSQL = `
WITH plan AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $8::bigint[], $9::bigint[], $10::bigint[])
        WITH ORDINALITY AS p(task_id, node_id, task_cpu, task_mem, task_disk, ord)
), want AS (
    SELECT p.*,
           sum(p.task_cpu)  OVER w AS cpu,
           sum(p.task_mem)  OVER w AS mem,
           sum(p.task_disk) OVER w AS disk
    FROM plan p
    WINDOW w AS (PARTITION BY p.node_id ORDER BY p.ord)
), port AS (
    SELECT * FROM unnest($5::uuid[], $6::text[], $7::int[]) AS q(task_id, protocol, host_port)
), want_port AS (
    SELECT w.task_id, w.node_id, w.ord, q.protocol, q.host_port
    FROM port q JOIN want w ON w.task_id = q.task_id
), clash AS (
    SELECT wp.task_id FROM want_port wp
    JOIN node_ports np ON np.node_id = wp.node_id AND np.protocol = wp.protocol AND np.host_port = wp.host_port
    UNION
    SELECT wp.task_id FROM want_port wp
    JOIN want_port o ON o.node_id = wp.node_id AND o.protocol = wp.protocol AND o.host_port = wp.host_port
                    AND o.ord < wp.ord
), vol AS (
    SELECT * FROM unnest($11::uuid[], $12::text[]) AS v(task_id, name)
), vol_clash AS (
    -- a volume that lives on another node or is being deleted (00040), or
    -- that an earlier task of the plan puts on another node
    SELECT v.task_id FROM vol v JOIN want w ON w.task_id = v.task_id
    JOIN volumes h ON h.name = v.name AND (h.node_id <> w.node_id OR h.delete_requested_at IS NOT NULL)
    UNION
    SELECT v.task_id FROM vol v JOIN want w ON w.task_id = v.task_id
    JOIN vol o ON o.name = v.name JOIN want ow ON ow.task_id = o.task_id AND ow.node_id <> w.node_id AND ow.ord < w.ord
), live AS MATERIALIZED (
    -- the chosen nodes' live tasks summed in one bitmap scan of
    -- tasks_node_live_idx, once (see liveSums): 500 tasks placed on 100
    -- nodes with 500 live tasks each summed 50,000 tasks in an index scan
    -- per node, 80 ms a pass in the bench's drain. The array, unlike a join
    -- with plan, keeps the index for a pass that fills one node once the
    -- statement's plan is generic.
    SELECT t.node_id, sum(t.cpu_millis) AS cpu, sum(t.memory_bytes) AS mem, sum(t.disk_bytes) AS disk
    FROM tasks t
    WHERE t.node_id = ANY($2::uuid[]) AND t.state IN ('scheduled', 'starting', 'running')
    GROUP BY t.node_id
), free AS (
    -- what each chosen node has free now: its capacity less the requests of
    -- its live tasks (live), summed under the node's lock (00014)
    SELECT n.id, n.cpu_millis - COALESCE(r.cpu, 0) AS cpu, n.memory_bytes - COALESCE(r.mem, 0) AS mem,
           n.disk_bytes - COALESCE(r.disk, 0) AS disk
    FROM nodes n LEFT JOIN live r ON r.node_id = n.id
    WHERE n.id IN (SELECT node_id FROM plan)
      AND n.state = 'ready' AND NOT n.cordoned
      AND n.last_heartbeat >= now() - node_silence_allowed(n.heartbeat_interval_ms, $4::float8)
), fit AS (
    SELECT w.task_id, w.node_id
    FROM want w JOIN free f ON f.id = w.node_id
    WHERE w.cpu <= f.cpu AND w.mem <= f.mem AND w.disk <= f.disk
      AND NOT EXISTS (SELECT 1 FROM clash c WHERE c.task_id = w.task_id)
      AND NOT EXISTS (SELECT 1 FROM vol_clash c WHERE c.task_id = w.task_id)
), placed AS (
    UPDATE tasks t SET
        state = 'scheduled', node_id = f.node_id, attempt = t.attempt + 1,
        reason = '', scheduled_at = now(), updated_at = now()
    FROM fit f
    WHERE t.id = f.task_id AND t.state = 'pending'
    RETURNING t.id, t.node_id, t.attempt
), held AS (
    INSERT INTO node_ports (node_id, protocol, host_port, task_id)
    SELECT p.node_id, q.protocol, q.host_port, p.id FROM placed p JOIN port q ON q.task_id = p.id
), homes AS (
    -- the volumes' homes; one that another pass put elsewhere meanwhile
    -- fails the pass in the trigger of 00040
    INSERT INTO volumes (name, node_id)
    SELECT DISTINCT v.name, p.node_id FROM placed p JOIN vol v ON v.task_id = p.id ORDER BY 1
    ON CONFLICT (name) DO UPDATE SET node_id = EXCLUDED.node_id
), ev AS (
    INSERT INTO task_events (task_id, from_state, to_state, attempt, node_id, reason)
    SELECT id, 'pending', 'scheduled', attempt, node_id, $3::text FROM placed
)
SELECT p.id, orch_wake_node(p.node_id, 'work') FROM placed p`

// retryReason is what a task shows that a pass meant to place but could not
// commit (its node filled up or was being filled by another replica); the
// next pass places it.
const retryReason = "the chosen node was taken by another placement meanwhile; retrying"

// reasonsSQL records why tasks fit nowhere and moves them to the back of the
// queue.
const reasonsSQL = `
UPDATE tasks t SET reason = r.reason, queued_at = now(),
    updated_at = CASE WHEN t.reason IS DISTINCT FROM r.reason THEN now() ELSE t.updated_at END
FROM unnest($1::uuid[], $2::text[]) AS r(id, reason)
WHERE t.id = r.id`

// retrySQL marks tasks the pass will retry, without moving them in the queue.
const retrySQL = `UPDATE tasks SET reason = $2, updated_at = now()
WHERE id = ANY($1::uuid[]) AND reason IS DISTINCT FROM $2`

// maxRounds bounds how often one pass re-plans the tasks it could not commit.
const maxRounds = 4

// SchedulePass runs one scheduling pass as one transaction: lock a batch of
// pending tasks, snapshot the nodes, let plan decide, take the chosen nodes,
// commit the placements that still fit, record why the rest wait, and wake
// the chosen nodes' agents.
//
// Placements that cannot be committed — the node is being filled by another
// replica right now, or filled up since the snapshot — are re-planned in the
// same pass on what it then knows (other replicas' nodes left out, its own
// nodes re-read), up to maxRounds times; what is left is retried by the next
// pass. Without contention that is six round trips however large the batch:
// BEGIN (with the pass's settings), the batch, the snapshot (one pipelined
// batch of queries), the node locks, the placements and COMMIT; a round that
// re-plans adds a re-read of the nodes it filled.
func (s *Store) SchedulePass(ctx context.Context, opts PassOpts, plan PlanFunc) (PassResult, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = 10 * time.Second
	}
	var res PassResult
	err := s.inTxWith(ctx, pgx.TxOptions{BeginQuery: passBeginSQL}, func(tx pgx.Tx) error {
		var err error
		res, err = schedulePass(ctx, tx, opts, plan)
		return err
	})
	if err != nil {
		return PassResult{}, fmt.Errorf("scheduling pass: %w", err)
	}
	return res, nil
}

func schedulePass(ctx context.Context, tx pgx.Tx, opts PassOpts, plan PlanFunc) (PassResult, error) {
	var res PassResult
	rows, err := tx.Query(ctx, lockPendingSQL, opts.Batch)
	if err != nil {
		return res, translate(err, "locking pending tasks")
	}
	tasks, err := pgx.CollectRows(rows, passTask)
	if err != nil {
		return res, translate(err, "locking pending tasks")
	}
	res.Considered = len(tasks)
	if len(tasks) == 0 {
		return res, nil
	}
	byID := make(map[uuid.UUID]*queue.Task, len(tasks))
	roundRobin := false
	for i := range tasks {
		byID[tasks[i].ID] = &tasks[i]
		if tasks[i].EffectiveStrategy(opts.Strategy) == queue.StrategyRoundRobin {
			roundRobin = true
		}
	}
	snap, err := snapshot(ctx, tx, opts.NodeTimeout, roundRobin)
	if err != nil {
		return res, err
	}
	if snap.Volumes, err = volumeHomes(ctx, tx, tasks); err != nil {
		return res, err
	}

	held := map[uuid.UUID]bool{}  // nodes this pass has locked
	taken := map[uuid.UUID]bool{} // nodes another transaction holds
	var unplaced map[uuid.UUID]string
	var retry []uuid.UUID
	var cursor *uuid.UUID
	remaining := tasks
	for round := 0; len(remaining) > 0 && round < maxRounds; round++ {
		p := plan(remaining, withoutNodes(snap, taken))
		if p.RoundRobin != nil {
			cursor, snap.RoundRobin = p.RoundRobin, *p.RoundRobin
		}
		if round == 0 {
			// The first round saw every node: its reasons are the truth.
			unplaced = p.Unplaced
		} else {
			// Later rounds lack the nodes others hold: try again next pass.
			for id := range p.Unplaced {
				retry = append(retry, id)
			}
		}
		var lock []uuid.UUID
		asked := map[uuid.UUID]bool{}
		for _, pl := range p.Placements {
			if !held[pl.NodeID] && !taken[pl.NodeID] && !asked[pl.NodeID] {
				asked[pl.NodeID] = true
				lock = append(lock, pl.NodeID)
			}
		}
		if len(lock) > 0 {
			rows, err := tx.Query(ctx, lockNodesSQL, lock)
			if err != nil {
				return res, translate(err, "locking nodes")
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			if err != nil {
				return res, translate(err, "locking nodes")
			}
			for _, id := range got {
				held[id] = true
			}
			for _, id := range lock {
				taken[id] = !held[id]
			}
		}
		var commit []queue.Placement
		remaining = remaining[:0:0]
		for _, pl := range p.Placements {
			if held[pl.NodeID] {
				commit = append(commit, pl)
			} else {
				remaining = append(remaining, *byID[pl.TaskID])
			}
		}
		if len(commit) == 0 {
			continue
		}
		placed, err := place(ctx, tx, opts, commit, byID)
		if err != nil {
			return res, err
		}
		res.Placed += len(placed)
		for _, pl := range commit {
			if !placed[pl.TaskID] {
				remaining = append(remaining, *byID[pl.TaskID])
			}
		}
		if len(remaining) > 0 && round+1 < maxRounds {
			// Another round: it re-plans on the figures of the nodes this
			// one filled as they are now.
			if err := refresh(ctx, tx, opts, commit, &snap); err != nil {
				return res, err
			}
		}
	}
	for _, t := range remaining {
		retry = append(retry, t.ID)
	}
	res.Unplaced, res.Rejected = len(unplaced), len(retry)

	b := &pgx.Batch{}
	if len(unplaced) > 0 {
		ids := make([]uuid.UUID, 0, len(unplaced))
		reasons := make([]string, 0, len(unplaced))
		for id, why := range unplaced {
			ids = append(ids, id)
			reasons = append(reasons, why)
		}
		b.Queue(reasonsSQL, ids, reasons)
	}
	if len(retry) > 0 {
		b.Queue(retrySQL, retry, retryReason)
	}
	if cursor != nil {
		b.Queue(moveCursorSQL, *cursor)
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return res, translate(err, "recording why tasks wait")
		}
	}
	return res, nil
}

// place commits placements onto nodes the pass holds, in one round trip,
// and returns the tasks placed.
func place(ctx context.Context, tx pgx.Tx, opts PassOpts, commit []queue.Placement, byID map[uuid.UUID]*queue.Task) (map[uuid.UUID]bool, error) {
	taskIDs := make([]uuid.UUID, len(commit))
	nodeIDs := make([]uuid.UUID, len(commit))
	cpu := make([]int64, len(commit))
	mem := make([]int64, len(commit))
	disk := make([]int64, len(commit))
	var portTask []uuid.UUID
	var portProto []string
	var portNum []int
	var volTask []uuid.UUID
	var volName []string
	for i, pl := range commit {
		r := byID[pl.TaskID].Resources
		taskIDs[i], nodeIDs[i], cpu[i], mem[i], disk[i] = pl.TaskID, pl.NodeID, r.CPUMillis, r.MemoryBytes, r.DiskBytes
		for _, p := range byID[pl.TaskID].Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			portTask, portProto, portNum = append(portTask, pl.TaskID), append(portProto, proto), append(portNum, p.HostPort)
		}
		for _, name := range byID[pl.TaskID].NamedVolumes() {
			volTask, volName = append(volTask, pl.TaskID), append(volName, name)
		}
	}
	placed := make(map[uuid.UUID]bool, len(commit))
	b := &pgx.Batch{}
	b.Queue(placeSQL, taskIDs, nodeIDs, "placed by "+opts.By, opts.NodeTimeout.Seconds(), portTask, portProto, portNum, cpu, mem, disk, volTask, volName).
		Query(func(rows pgx.Rows) error {
			defer rows.Close()
			for rows.Next() {
				var id uuid.UUID
				var ignored any
				if err := rows.Scan(&id, &ignored); err != nil {
					return err
				}
				placed[id] = true
			}
			return rows.Err()
		})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, translate(err, "placing tasks")
	}
	return placed, nil
}

// refresh re-reads, in one round trip, the nodes that commit placed tasks
// on, into snap, so that what did not fit can be re-planned on the truth.
// Only a pass that re-plans needs it: the usual one, whose placements all
// went through, would sum those nodes' live tasks a third time for nothing
// (the snapshot and placeSQL's free figures are the other two), which in
// the bench's placement phase was a node read as long as the snapshot's.
func refresh(ctx context.Context, tx pgx.Tx, opts PassOpts, commit []queue.Placement, snap *queue.Snapshot) error {
	var nodes []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, pl := range commit {
		if !seen[pl.NodeID] {
			seen[pl.NodeID] = true
			nodes = append(nodes, pl.NodeID)
		}
	}
	var fresh []queue.Node
	freshPorts := map[uuid.UUID][]queue.Port{}
	b := &pgx.Batch{}
	b.Queue(refreshNodesSQL, opts.NodeTimeout.Seconds(), nodes).Query(func(rows pgx.Rows) error {
		var err error
		fresh, err = collectSnapshotNodes(rows)
		return err
	})
	b.Queue(refreshPortsSQL, nodes).Query(func(rows pgx.Rows) error {
		return collectPorts(rows, freshPorts)
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return translate(err, "re-reading nodes")
	}
	replaceNodes(snap, fresh, freshPorts)
	return nil
}

// snapshot reads, in one round trip, the round-robin cursor (locked when
// the pass will move it), every node and the host ports held on them. It
// turns JIT compilation off for the pass first: its statements are short,
// and the planner's estimates for unnest and CTEs would otherwise have it
// spend far longer compiling than running them.
func snapshot(ctx context.Context, tx pgx.Tx, timeout time.Duration, lockCursor bool) (queue.Snapshot, error) {
	snap := queue.Snapshot{Ports: map[uuid.UUID][]queue.Port{}}
	b := &pgx.Batch{}
	b.Queue(`SET LOCAL jit = off`)
	q := cursorSQL
	if lockCursor {
		q += ` FOR UPDATE`
	}
	b.Queue(q).QueryRow(func(row pgx.Row) error {
		var id *uuid.UUID
		if err := row.Scan(&id); err != nil {
			return translate(err, "reading the round-robin cursor")
		}
		if id != nil {
			snap.RoundRobin = *id
		}
		return nil
	})
	b.Queue(snapshotNodesSQL, timeout.Seconds()).Query(func(rows pgx.Rows) error {
		var err error
		snap.Nodes, err = collectSnapshotNodes(rows)
		return err
	})
	b.Queue(snapshotPortsSQL).Query(func(rows pgx.Rows) error {
		return collectPorts(rows, snap.Ports)
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return queue.Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	return snap, nil
}

// collectSnapshotNodes scans nodeCols followed by "stale": a node whose
// heartbeat is too old is reported down, so that the scheduler can say so.
func collectSnapshotNodes(rows pgx.Rows) ([]queue.Node, error) {
	nodes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queue.Node, error) {
		var stale bool
		n, err := scanNode(r, &stale)
		if stale {
			n.State = queue.NodeDown
		}
		return n, err
	})
	return nodes, translate(err, "reading nodes")
}

func collectPorts(rows pgx.Rows, into map[uuid.UUID][]queue.Port) error {
	defer rows.Close()
	for rows.Next() {
		var node uuid.UUID
		var p queue.Port
		if err := rows.Scan(&node, &p.Protocol, &p.HostPort); err != nil {
			return translate(err, "reading host ports")
		}
		into[node] = append(into[node], p)
	}
	return translate(rows.Err(), "reading host ports")
}

// volumeHomes reads where the named volumes the tasks mount live (nil when
// they mount none, without asking).
func volumeHomes(ctx context.Context, tx pgx.Tx, tasks []queue.Task) (map[string]queue.VolumeHome, error) {
	var names []string
	for i := range tasks {
		names = append(names, tasks[i].NamedVolumes()...)
	}
	if len(names) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT name, node_id, delete_requested_at IS NOT NULL FROM volumes WHERE name = ANY($1::text[])`, names)
	if err != nil {
		return nil, translate(err, "reading volumes")
	}
	homes := map[string]queue.VolumeHome{}
	var name string
	var h queue.VolumeHome
	_, err = pgx.ForEachRow(rows, []any{&name, &h.NodeID, &h.Deleting}, func() error {
		homes[name] = h
		return nil
	})
	if err != nil {
		return nil, translate(err, "reading volumes")
	}
	return homes, nil
}

// withoutNodes is snap without the nodes in drop.
func withoutNodes(snap queue.Snapshot, drop map[uuid.UUID]bool) queue.Snapshot {
	if len(drop) == 0 {
		return snap
	}
	out := snap
	out.Nodes = make([]queue.Node, 0, len(snap.Nodes))
	for _, n := range snap.Nodes {
		if !drop[n.ID] {
			out.Nodes = append(out.Nodes, n)
		}
	}
	return out
}

// replaceNodes puts re-read nodes and their host ports into snap.
func replaceNodes(snap *queue.Snapshot, fresh []queue.Node, ports map[uuid.UUID][]queue.Port) {
	byID := make(map[uuid.UUID]queue.Node, len(fresh))
	for _, n := range fresh {
		byID[n.ID] = n
		snap.Ports[n.ID] = ports[n.ID]
	}
	for i := range snap.Nodes {
		if n, ok := byID[snap.Nodes[i].ID]; ok {
			snap.Nodes[i] = n
		}
	}
}

// passTask scans a row of lockPendingSQL: the pending task with the fields
// placement reads (id, name, requests, host ports, strategy, constraints,
// creation time, privileges, volumes); the rest of the spec stays in the database.
func passTask(row pgx.CollectableRow) (queue.Task, error) {
	t := queue.Task{State: queue.Pending, DesiredState: queue.DesiredRunning}
	err := row.Scan(&t.ID, &t.Name, &t.Resources.CPUMillis, &t.Resources.MemoryBytes, &t.Resources.DiskBytes,
		&t.Ports, &t.Strategy, &t.Constraints, &t.CreatedAt, &t.Privileged, &t.Network, &t.Volumes)
	return t, err
}
