-- +goose Up
-- Observability: measured usage of nodes and tasks, task logs, and the
-- reporting views. Agents sit behind NAT, so everything a user looks at is
-- written here by the agents and read here by the coordinators and the CLI.

-- node_stats: history of what each node's agent measured, one row per
-- sample. The latest sample is also on the nodes row (cpu_percent, load1,
-- memory_used_bytes, disk_used_bytes, usage_at). Rows older than the
-- retention are deleted by the writer as it adds new ones.
CREATE TABLE node_stats (
    id                 bigserial PRIMARY KEY,
    node_id            uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    at                 timestamptz NOT NULL DEFAULT now(),
    cpu_percent        real NOT NULL,
    load1              real NOT NULL,
    memory_used_bytes  bigint NOT NULL,
    memory_total_bytes bigint NOT NULL,
    disk_used_bytes    bigint NOT NULL,
    disk_total_bytes   bigint NOT NULL
);
CREATE INDEX node_stats_node_at_idx ON node_stats (node_id, at);

-- task_usage: the latest measured usage of each task's current (or last)
-- attempt. Kept out of the tasks table so that sampling does not rewrite the
-- queue's hot rows.
CREATE TABLE task_usage (
    task_id            uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    attempt            integer NOT NULL,
    node_id            uuid NOT NULL,
    at                 timestamptz NOT NULL,
    cpu_percent        real NOT NULL,  -- of one core, as `docker stats` shows it
    memory_used_bytes  bigint NOT NULL,
    memory_limit_bytes bigint NOT NULL
);

-- task_stats: history of task_usage, pruned like node_stats.
CREATE TABLE task_stats (
    id                 bigserial PRIMARY KEY,
    task_id            uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    attempt            integer NOT NULL,
    node_id            uuid NOT NULL,
    at                 timestamptz NOT NULL,
    cpu_percent        real NOT NULL,
    memory_used_bytes  bigint NOT NULL,
    memory_limit_bytes bigint NOT NULL
);
CREATE INDEX task_stats_task_at_idx ON task_stats (task_id, at);
CREATE INDEX task_stats_node_at_idx ON task_stats (node_id, at);

-- task_logs: the output lines of every attempt of a task, in the order the
-- agent read them (id). Bounded per task: task_log_totals keeps the counts,
-- and the oldest lines are deleted when a task goes over its cap.
CREATE TABLE task_logs (
    id      bigserial PRIMARY KEY,
    task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    at      timestamptz NOT NULL,  -- when the container wrote the line
    stream  text NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    line    text NOT NULL,
    bytes   integer GENERATED ALWAYS AS (octet_length(line)) STORED
);
CREATE INDEX task_logs_task_idx ON task_logs (task_id, id) INCLUDE (bytes);

-- task_log_totals: per task, what task_logs holds and what the cap dropped,
-- and how far the agent has shipped the current attempt's output (so that a
-- restarted agent resumes without repeating lines). Its row is also the lock
-- that serializes writers of one task's logs.
CREATE TABLE task_log_totals (
    task_id         uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    lines           bigint NOT NULL DEFAULT 0,
    bytes           bigint NOT NULL DEFAULT 0,
    dropped_lines   bigint NOT NULL DEFAULT 0,
    dropped_bytes   bigint NOT NULL DEFAULT 0,
    shipped_attempt integer NOT NULL DEFAULT 0,
    shipped_at      timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Reporting views. These are a public interface (README, "Reporting"): their
-- names, columns and meaning only ever grow; a migration that changes or
-- drops a column is a breaking change.

-- report_task_counts: how many tasks are in each state on each node
-- ('-' for tasks on no node: pending ones, and ended ones that never ran).
CREATE VIEW report_task_counts AS
SELECT COALESCE(n.name, '-') AS node, t.state, count(*) AS tasks
FROM tasks t LEFT JOIN nodes n ON n.id = t.node_id
GROUP BY 1, 2;

-- report_node_capacity: per node, what it offers, what its live tasks have
-- reserved, and what its agent last measured in use.
CREATE VIEW report_node_capacity AS
SELECT n.name AS node, n.state, n.cordoned,
       n.cpu_millis, n.reserved_cpu_millis, n.cpu_percent AS cpu_used_percent, n.load1,
       n.memory_bytes, n.reserved_memory_bytes, n.memory_used_bytes,
       n.disk_bytes, n.reserved_disk_bytes, n.disk_used_bytes,
       (SELECT count(*) FROM tasks t WHERE t.node_id = n.id AND t.state IN ('scheduled', 'starting', 'running')) AS live_tasks,
       n.usage_at, n.last_heartbeat
FROM nodes n;

-- report_task_times: per task, how long it waited to run the first time
-- (created until its first running event) and how long its current or last
-- attempt ran (until it ended, or until now while it runs), in seconds.
CREATE VIEW report_task_times AS
SELECT t.id AS task_id, t.name, t.image, t.state, n.name AS node, t.attempt, t.restarts,
       t.created_at, fr.at AS first_running_at, t.started_at, t.finished_at,
       round(extract(epoch FROM fr.at - t.created_at)::numeric, 3) AS queue_wait_seconds,
       CASE WHEN t.started_at IS NULL THEN NULL
            WHEN t.state = 'running' THEN round(extract(epoch FROM now() - t.started_at)::numeric, 3)
            WHEN t.finished_at >= t.started_at THEN round(extract(epoch FROM t.finished_at - t.started_at)::numeric, 3)
       END AS run_seconds
FROM tasks t
LEFT JOIN nodes n ON n.id = t.node_id
LEFT JOIN LATERAL (
    SELECT e.at FROM task_events e WHERE e.task_id = t.id AND e.to_state = 'running' ORDER BY e.id LIMIT 1
) fr ON true;

-- report_image_restarts: per image, its tasks, how often they were
-- restarted, and how they ended.
CREATE VIEW report_image_restarts AS
SELECT t.image, count(*) AS tasks, sum(t.restarts) AS restarts,
       count(*) FILTER (WHERE t.restarts > 0) AS tasks_restarted,
       count(*) FILTER (WHERE t.state = 'running') AS running,
       count(*) FILTER (WHERE t.state = 'completed') AS completed,
       count(*) FILTER (WHERE t.state = 'failed') AS failed,
       count(*) FILTER (WHERE t.state = 'stopped') AS stopped
FROM tasks t
GROUP BY t.image;

-- report_task_usage: per task, its latest measured usage next to what it
-- reserved.
CREATE VIEW report_task_usage AS
SELECT t.id AS task_id, t.name, t.state, n.name AS node, u.attempt,
       t.cpu_millis, u.cpu_percent, t.memory_bytes, u.memory_used_bytes, u.memory_limit_bytes, u.at
FROM task_usage u
JOIN tasks t ON t.id = u.task_id
LEFT JOIN nodes n ON n.id = u.node_id;

-- report_task_logs: per task, the log lines kept and those the cap dropped.
CREATE VIEW report_task_logs AS
SELECT t.id AS task_id, t.name, t.state, l.lines, l.bytes, l.dropped_lines, l.dropped_bytes, l.updated_at
FROM task_log_totals l JOIN tasks t ON t.id = l.task_id;

-- +goose Down
DROP VIEW report_task_logs;
DROP VIEW report_task_usage;
DROP VIEW report_image_restarts;
DROP VIEW report_task_times;
DROP VIEW report_node_capacity;
DROP VIEW report_task_counts;
DROP TABLE task_log_totals;
DROP TABLE task_logs;
DROP TABLE task_stats;
DROP TABLE task_usage;
DROP TABLE node_stats;
