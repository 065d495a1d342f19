// Package sql holds orch's schema as goose migrations, embedded in the binary
// so that `orch migrate up` and the coordinator need nothing on disk.
//
// The migrations are numbered and zero-padded (00001_init.sql, ...); a
// coordinator applies them at start unless --no-migrate, and orch migrate up
// and orch migrate status apply and list them. Every query that reads or
// writes these tables lives in package queue/postgres. This comment describes
// the tables as they are after the last migration, and the reporting views,
// which are orch's public SQL interface.
//
// # Tables
//
// nodes: one row per machine running an agent.
//
//	id uuid, name (unique), address, labels jsonb
//	    identity; a restarted agent keeps its node by name
//	cpu_millis, memory_bytes, disk_bytes
//	    the capacity the agent offers (1000 millis = one core)
//	reserved_cpu_millis, reserved_memory_bytes, reserved_disk_bytes
//	    the sum of the requests of the node's live tasks, kept by the same
//	    transactions that place and end tasks
//	cpu_percent, load1, memory_used_bytes, disk_used_bytes, usage_at
//	    the latest usage the agent measured (the history is in node_stats)
//	state (ready, down, unhealthy), cordoned, last_heartbeat, registered_at, updated_at
//	    liveness
//	heartbeat_interval_ms
//	    the interval the agent beats at now (its own, or the cluster's when longer)
//	health_error, state_changed_at, engine_down_since
//	    why a node is unhealthy and since when; engine_down_since is set
//	    while its container engine does not answer at all
//	draining, drain_deadline
//	    a draining node is also cordoned; at the deadline the sweeper moves
//	    what is left
//
// tasks: one row per task for its whole life; re-placements and restarts are
// new attempts of the same row, each recorded in task_events.
//
//	id uuid, name, image, command text[], env jsonb, labels jsonb, ports jsonb
//	    what to run; a name belongs to one live task at a time among tasks
//	    not of a job (tasks_live_name_key, 00030), finished tasks keep theirs;
//	    tasks_short_id_idx (00031) finds a task by its id's last 12 digits;
//	    a task created without a name is named task-<short id>, which the
//	    name indexes leave out (00055: it is found through the short id)
//	cpu_millis, memory_bytes, disk_bytes
//	    the requests: reserved on the node; CPU and memory are also the
//	    container's limits (disk is a scheduling figure only)
//	pids_limit
//	    lowers the node's process limit for the container (0: the node's)
//	secret_keys text[]
//	    the names of the task's secrets; their sealed values are in
//	    task_secrets
//	privileged, network ('', bridge, host, none)
//	    containers with privileges or on the host's network (admin only)
//	restart_policy (never, on-failure, always), max_restarts, restarts, backoff_step
//	    the restart policy, the restarts so far, and the next restart's
//	    backoff exponent (it starts over after a long enough run)
//	not_before
//	    a pending restart waits out its backoff until then (and is queued
//	    then: queued_at)
//	stop_after_disconnect_ms
//	    its agent stops it after this long out of touch with the database
//	    (0: never)
//	health_check jsonb, health ('', starting, healthy, unhealthy), health_detail, health_at
//	    the probe (NULL: none) and what the agent last saw
//	desired_state (running, stopped), state
//	    what the user wants, and where the task is
//	node_id, attempt, container_id
//	    the current placement (its lease) and container; a scheduled,
//	    starting or running task always names its node, a pending one never
//	exit_code, error, reason
//	    how it ended; why a pending task is not placed
//	strategy, constraints jsonb
//	    placement: the task's own strategy ('' = the coordinator's) and its
//	    label constraints, each {"key", "op" ("=" or "!="), "value"}
//	queued_at
//	    a pending task's place in the scheduling queue, moved back each time
//	    no node fits it; a restart in backoff is queued where its wait ends
//	created_at, updated_at, scheduled_at, started_at, finished_at
//
// task_events: append-only history, one row per state change, written in the
// same transaction as the change: id bigserial, task_id, at, from_state,
// to_state, attempt, node_id, exit_code, reason.
//
// task_secrets: task_id, sealed: a task's secrets sealed with the cluster's
// key (AES-256-GCM; package queue/secrets). Only the agent of the node the
// task is live on may read its row.
//
// node_ports: the host ports live tasks hold, one row per published port:
// (node_id, protocol, host_port) primary key, task_id. Rows are inserted by
// the statement that places the task and deleted, with the release of the
// reserved counters, by the trigger that fires when a task leaves its live
// states; the primary key is what makes a port impossible to hand out twice
// on one node.
//
// scheduler_cursor: where the round-robin walk over the nodes (in id order)
// stopped (name, node_id), so that every coordinator replica continues the
// same walk.
//
// heartbeat_policy: one row: interval_ms, the shortest interval the cluster
// lets its agents beat at (0: each keeps its own), live_nodes it was computed
// for, updated_at. The function node_silence_allowed(heartbeat_interval_ms,
// timeout) is how long a node may stay silent before it is down: the
// timeout, or, for a node beating less often than every half timeout, its
// interval plus half the timeout.
//
// node_stats: the history of what each node's agent measured, one row per
// sample: id, node_id, at, cpu_percent, load1, memory_used_bytes,
// memory_total_bytes, disk_used_bytes, disk_total_bytes, stamped with the
// database's clock. Each write deletes the node's rows older than the
// agent's --stats-retention, and the coordinators prune every node's older
// than theirs.
//
// task_usage: the latest measured usage of each task's current (or last)
// attempt, kept out of tasks so that sampling does not rewrite the queue's
// hot rows: task_id, attempt, node_id, at, cpu_percent (of one core, as
// docker stats shows it), memory_used_bytes, memory_limit_bytes. task_stats
// holds its history (with an id), pruned like node_stats.
//
// task_logs: the output lines of every attempt of a task, in the order the
// agent read them: id, task_id, attempt, at (when the container wrote the
// line), stream (stdout, stderr), line, bytes. task_log_totals, per task:
// lines, bytes, dropped_lines, dropped_bytes (what task_logs holds and what
// the per-task cap dropped), shipped_attempt and shipped_at (how far the agent
// shipped, so that a restarted agent resumes without repeating lines),
// updated_at. Its row is also the lock that serializes writers of one task's
// logs.
//
// agent_roles: role_name, node_name, created_at: which per-node agent role
// may act as which node, and what it may claim for it: max_cpu_millis,
// max_memory_bytes, max_disk_bytes (NULL until the node first registers),
// allow_privileged (see package queue/postgres for the row-level security
// it drives).
//
// task_counts: one row: how many finished tasks there are in each state
// (completed, failed, stopped) up to counted_until, half a minute behind the
// clock, and when it was brought forward (counted_at); a count adds the
// tasks finished since. /metrics reads it instead of the whole table.
//
// db_epochs: started_at, timeline, seen_at: each life of the primary (its
// postmaster's start time and its WAL timeline, which a promotion bumps) and
// when a coordinator's sweep first saw it. orch_db_back_since() returns when
// the current one was first seen: nodes are not declared down until a
// timeout after that, since no agent could heartbeat while the database was
// away (package queue/postgres, Failover).
//
// tasks.volumes: the spec's mounts, [{"source", "target", "read_only"}].
//
// volumes: one row per named volume: the node it lives on (written by the
// pass that first placed a task naming it), created_at, and, while a user's
// delete is pending, delete_requested_at; error is why the agent could not
// remove it yet. Agents see and remove the rows of their own node.
//
// registry_credentials: one row per private registry (server: host[:port],
// or docker.io): username, and sealed (username and password sealed with
// the cluster's secrets key). An agent may read a row only while its node
// holds a live task of an image from that server (orch_image_registry).
//
// Finished tasks are deleted, with their events, logs, usage, stats and
// secrets, once they are older than the coordinators' --retention (7 days).
//
// Partial indexes on the live states keep terminal history, however large,
// out of the hot paths (the pending queue, a node's live tasks).
//
// # Reporting views
//
// Plain SQL for reports. These views are a public interface: their names,
// columns and meaning only grow, and a migration that changes or drops a
// column is a breaking change (00004_observability.sql defines them). They
// run as their owner, so a reporting role needs only SELECT on them. They
// only read, so they work on a hot standby too: report users may read a
// replica and leave the primary to the cluster (tested on a real standby).
//
//	report_task_counts      one row per node and state
//	    node ('-' for none: pending tasks, and ended ones that never ran), state, tasks
//	report_node_capacity    one row per node
//	    node, state, cordoned, cpu_millis, reserved_cpu_millis, cpu_used_percent, load1,
//	    memory_bytes, reserved_memory_bytes, memory_used_bytes, disk_bytes,
//	    reserved_disk_bytes, disk_used_bytes, live_tasks, usage_at, last_heartbeat
//	report_task_times       one row per task
//	    task_id, name, image, state, node, attempt, restarts, created_at,
//	    first_running_at, started_at, finished_at,
//	    queue_wait_seconds (created → first running),
//	    run_seconds (current or last attempt; until now while running)
//	report_image_restarts   one row per image
//	    image, tasks, restarts, tasks_restarted, running, completed, failed, stopped
//	report_task_usage       one row per measured task
//	    task_id, name, state, node, attempt, cpu_millis (reserved),
//	    cpu_percent (of one core), memory_bytes (reserved), memory_used_bytes,
//	    memory_limit_bytes, at
//	report_task_logs        one row per task with logs
//	    task_id, name, state, lines, bytes, dropped_lines, dropped_bytes, updated_at
//	report_task_failures    one row per task that failed for good (00035_task_failures.sql)
//	    task_id, task, image, job (NULL for a task of its own), node, attempt, restarts,
//	    exit_code (NULL when no container ran: a start that failed), error (what the
//	    agent or engine said), reason (the history's account: "exited with code 3",
//	    "health check failed: ...", the start error), failed_at
//	report_job_endpoints    one row per running job task and published port (00020_jobs.sql)
//	    job, version, task_id, task, node, node_address, host_port, container_port,
//	    protocol, health, healthy
//
// A task its restart policy brings back is not in report_task_failures until it
// fails for good (restarts counts the attempts before); every attempt's end is
// in task_events.
//
// From a one-node orch dev cluster running four tasks (web running, batch
// completed, crash exited 3, huge asking for more CPU than any node has):
//
//	$ psql "$DB" -c 'SELECT * FROM report_task_counts ORDER BY node, state'
//	   node    |   state   | tasks
//	-----------+-----------+-------
//	 -         | pending   |     1
//	 demo-node | completed |     1
//	 demo-node | failed    |     1
//	 demo-node | running   |     1
//
//	$ psql "$DB" -c 'SELECT name, state, node, queue_wait_seconds, run_seconds FROM report_task_times ORDER BY created_at'
//	 name  |   state   |   node    | queue_wait_seconds | run_seconds
//	-------+-----------+-----------+--------------------+-------------
//	 web   | running   | demo-node |              0.682 |      15.727
//	 batch | completed | demo-node |              0.540 |       1.195
//	 crash | failed    | demo-node |              0.548 |       0.243
//	 huge  | pending   |           |                    |
//
//	$ psql "$DB" -c 'SELECT node, cpu_millis, reserved_cpu_millis, cpu_used_percent, pg_size_pretty(memory_bytes) AS memory,
//	    pg_size_pretty(reserved_memory_bytes) AS reserved, pg_size_pretty(memory_used_bytes) AS used, live_tasks
//	  FROM report_node_capacity'
//	   node    | cpu_millis | reserved_cpu_millis | cpu_used_percent | memory  | reserved |  used  | live_tasks
//	-----------+------------+---------------------+------------------+---------+----------+--------+------------
//	 demo-node |       2000 |                 500 |        95.989975 | 4096 MB | 128 MB   | 795 MB |          1
//
//	$ psql "$DB" -c 'SELECT image, tasks, restarts, tasks_restarted, running, completed, failed FROM report_image_restarts'
//	      image        | tasks | restarts | tasks_restarted | running | completed | failed
//	-------------------+-------+----------+-----------------+---------+-----------+--------
//	 orch-workload:dev |     4 |        0 |               0 |       1 |         1 |      1
//
//	$ psql "$DB" -c 'SELECT name, node, cpu_millis, round(cpu_percent::numeric, 1) AS cpu_percent,
//	    pg_size_pretty(memory_used_bytes) AS memory_used, pg_size_pretty(memory_limit_bytes) AS memory_limit FROM report_task_usage'
//	 name |   node    | cpu_millis | cpu_percent | memory_used | memory_limit
//	------+-----------+------------+-------------+-------------+--------------
//	 web  | demo-node |        500 |         0.0 | 32 MB       | 128 MB
//
//	$ psql "$DB" -c 'SELECT name, state, lines, bytes, dropped_lines FROM report_task_logs ORDER BY name'
//	 name  |   state   | lines | bytes | dropped_lines
//	-------+-----------+-------+-------+---------------
//	 batch | completed |     3 |    18 |             0
//	 crash | failed    |     2 |    12 |             0
//	 web   | running   |     4 |    52 |             0
//
// The tables behind the views can be queried the same way, for example the
// nodes' load per minute:
//
//	SELECT date_trunc('minute', at) AS minute, round(avg(cpu_percent)::numeric, 1) AS cpu,
//	       pg_size_pretty(max(memory_used_bytes)) AS peak_memory
//	FROM node_stats GROUP BY 1 ORDER BY 1;
//
// or tasks by state and node straight from the tables:
//
//	SELECT coalesce(n.name, '-') AS node, t.state, count(*)
//	FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id
//	GROUP BY 1, 2 ORDER BY 1, 2;
package sql
