package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// taskCols is the column list every task query selects, in scanTask's order.
const taskCols = `t.id, t.name, t.image, t.command, t.env, t.labels, t.cpu_millis, t.memory_bytes,
	t.disk_bytes, t.restart_policy, t.max_restarts, t.ports, t.desired_state, t.state, t.node_id,
	t.attempt, t.restarts, t.container_id, t.exit_code, t.error, t.reason, t.created_at,
	t.updated_at, t.scheduled_at, t.started_at, t.finished_at, t.strategy, t.constraints,
	t.not_before, t.health_check, t.health, t.health_detail, t.health_at, t.privileged, t.network,
	t.stop_after_disconnect_ms, t.secret_keys, t.pids_limit, t.job_id, t.job_version, t.job_index,
	CASE WHEN t.host_ports_attempt = t.attempt THEN t.host_ports END, t.volumes`

func taskDest(t *queue.Task) []any {
	return []any{&t.ID, &t.Name, &t.Image, &t.Command, &t.Env, &t.Labels, &t.Resources.CPUMillis,
		&t.Resources.MemoryBytes, &t.Resources.DiskBytes, &t.RestartPolicy, &t.MaxRestarts, &t.Ports,
		&t.DesiredState, &t.State, &t.NodeID, &t.Attempt, &t.Restarts, &t.ContainerID, &t.ExitCode,
		&t.Error, &t.Reason, &t.CreatedAt, &t.UpdatedAt, &t.ScheduledAt, &t.StartedAt, &t.FinishedAt,
		&t.Strategy, &t.Constraints,
		&t.NotBefore, &t.HealthCheck, &t.Health, &t.HealthDetail, &t.HealthAt, &t.Privileged, &t.Network,
		millis{&t.StopAfterDisconnect}, &t.SecretKeys, &t.PidsLimit, &t.JobID, &t.JobVersion, &t.JobIndex,
		&t.HostPorts, &t.Volumes}
}

// millis scans a bigint of milliseconds into a duration.
type millis struct{ d *queue.Duration }

func (m millis) Scan(src any) error {
	ms, ok := src.(int64)
	if !ok {
		return fmt.Errorf("scanning %T as milliseconds", src)
	}
	*m.d = queue.Duration(time.Duration(ms) * time.Millisecond)
	return nil
}

func scanTask(row pgx.Row) (queue.Task, error) {
	var t queue.Task
	err := row.Scan(taskDest(&t)...)
	return t, err
}

// scanTaskWithNode scans taskCols followed by the node's name.
func scanTaskWithNode(row pgx.Row) (queue.Task, error) {
	var t queue.Task
	err := row.Scan(append(taskDest(&t), &t.NodeName)...)
	return t, err
}

// queryTasks reads the tasks sql selects (with the node's name after them
// when withNode), trying again as s.retry does when the connection breaks;
// what names the read in its errors.
func (s *Store) queryTasks(ctx context.Context, what string, withNode bool, sql string, args ...any) ([]queue.Task, error) {
	var tasks []queue.Task
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		tasks, err = collectTasks(rows, withNode)
		return err
	})
	if err != nil {
		return nil, translate(err, what)
	}
	return tasks, nil
}

func collectTasks(rows pgx.Rows, withNode bool) ([]queue.Task, error) {
	defer rows.Close()
	var out []queue.Task
	for rows.Next() {
		var t queue.Task
		var err error
		if withNode {
			t, err = scanTaskWithNode(rows)
		} else {
			t, err = scanTask(rows)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// nodeCols is the column list every node query selects, in scanNode's
// order, from nodeJoin (the node n and its reservations r).
const nodeCols = `n.id, n.name, n.address, n.labels, n.cpu_millis, n.memory_bytes, n.disk_bytes,
	COALESCE(r.cpu_millis, 0), COALESCE(r.memory_bytes, 0), COALESCE(r.disk_bytes, 0), n.cpu_percent, n.load1,
	n.memory_used_bytes, n.disk_used_bytes, n.usage_at, n.state, n.cordoned,
	n.last_heartbeat, n.registered_at,
	n.health_error, n.draining, n.drain_deadline, n.state_changed_at`

// nodeJoin joins a node row n (a table or a CTE of node rows) with what its
// live tasks reserve, summed per node on tasks_node_live_idx. A lateral
// subquery rather than a join with the view node_reserved (00014): the
// view's security barrier keeps a query's node filter out of it, so reading
// one node summed every live task of the cluster (half a second per read
// with 20,000 live tasks in the bench's placement phase). Under an agent's
// role, row security on tasks limits the sums to the agent's own node, as
// the view does.
const nodeJoin = ` LEFT JOIN LATERAL (
    SELECT sum(t.cpu_millis)::bigint AS cpu_millis, sum(t.memory_bytes)::bigint AS memory_bytes,
           sum(t.disk_bytes)::bigint AS disk_bytes, count(*) AS live_tasks
    FROM tasks t WHERE t.node_id = n.id AND t.state IN ('scheduled', 'starting', 'running')) r ON true`

// liveSums and nodesFrom read every node with its reservations, for a
// statement that starts with liveSums: the live tasks are summed in one pass
// over tasks_node_live_idx, grouped by node, rather than in an index scan
// per node (nodeJoin). With 50,000 live tasks on 100 nodes that read took
// 23 ms instead of 80 (EXPLAIN ANALYZE; a heap page that holds several of
// the tasks is visited once instead of once per node), and a scheduling
// pass reads it at every round. The sums are MATERIALIZED so that they are
// computed once whatever the join: planned as the inner side of a nested
// loop, a subquery would be summed again for every node. A read of a few
// nodes keeps nodeJoin, whose node filter reaches the sums.
const liveSums = `WITH r AS MATERIALIZED (
    SELECT t.node_id, sum(t.cpu_millis)::bigint AS cpu_millis, sum(t.memory_bytes)::bigint AS memory_bytes,
           sum(t.disk_bytes)::bigint AS disk_bytes, count(*) AS live_tasks
    FROM tasks t WHERE t.state IN ('scheduled', 'starting', 'running') GROUP BY t.node_id) `

const nodesFrom = ` FROM nodes n LEFT JOIN r ON r.node_id = n.id`

func scanNode(row pgx.Row, extra ...any) (queue.Node, error) {
	var n queue.Node
	dest := []any{&n.ID, &n.Name, &n.Address, &n.Labels, &n.Capacity.CPUMillis, &n.Capacity.MemoryBytes,
		&n.Capacity.DiskBytes, &n.Reserved.CPUMillis, &n.Reserved.MemoryBytes, &n.Reserved.DiskBytes,
		&n.Usage.CPUPercent, &n.Usage.Load1, &n.Usage.MemoryUsedBytes, &n.Usage.DiskUsedBytes, &n.Usage.At,
		&n.State, &n.Cordoned, &n.LastHeartbeat, &n.RegisteredAt,
		&n.HealthError, &n.Draining, &n.DrainDeadline, &n.StateChangedAt}
	err := row.Scan(append(dest, extra...)...)
	return n, err
}

// queryAll runs sql on the pool and scans each row it returns with scan:
// the shape of every list the store reads. what names the read in its
// errors (see translate).
func queryAll[T any](ctx context.Context, s *Store, what string, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err, what)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, translate(err, what)
	}
	return out, nil
}

// scanOne scans a row of one column, as pgx.RowTo does, for queryAll.
func scanOne[T any](row pgx.Row) (T, error) {
	var v T
	err := row.Scan(&v)
	return v, err
}

// scanEvent scans a task_events row as Events and JobEvents select it: id,
// task, time, from and to states, attempt, node, exit code and reason.
func scanEvent(r pgx.Row) (queue.Event, error) {
	var e queue.Event
	err := r.Scan(&e.ID, &e.TaskID, &e.At, &e.From, &e.To, &e.Attempt, &e.NodeID, &e.ExitCode, &e.Reason)
	return e, err
}
