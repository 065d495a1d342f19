-- +goose Up
-- A node's reservations are the sum of the requests of its live tasks, read
-- from the tasks themselves instead of counters on the node's row. The
-- counters were a hot spot: every task that ended updated its node's row,
-- so a node ending many tasks at once queued them all on that row (each
-- holding it through its commit's WAL flush), as did its heartbeats, its
-- stats and the scheduling passes placing onto it, which skip a locked
-- node. Now ending a task touches only the task. Placement still takes the
-- node's row lock before it adds to the node (so two coordinators cannot
-- both fill its last room), and sums its live tasks under that lock: a
-- placement can no longer race another, and ends only free room.

-- node_reserved: per node with live tasks, what they have reserved (read on
-- tasks_node_live_idx). An agent's role sees its own node's only.
CREATE VIEW node_reserved WITH (security_barrier) AS
SELECT node_id, sum(cpu_millis)::bigint AS cpu_millis, sum(memory_bytes)::bigint AS memory_bytes,
       sum(disk_bytes)::bigint AS disk_bytes, count(*) AS live_tasks
FROM tasks WHERE state IN ('scheduled', 'starting', 'running')
  AND ((SELECT orch_agent_node_id()) IS NULL OR node_id = (SELECT orch_agent_node_id()))
GROUP BY node_id;
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        GRANT SELECT ON node_reserved TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd

-- The report keeps its columns and their meaning.
CREATE OR REPLACE VIEW report_node_capacity AS
SELECT n.name AS node, n.state, n.cordoned,
       n.cpu_millis, COALESCE(r.cpu_millis, 0) AS reserved_cpu_millis, n.cpu_percent AS cpu_used_percent, n.load1,
       n.memory_bytes, COALESCE(r.memory_bytes, 0) AS reserved_memory_bytes, n.memory_used_bytes,
       n.disk_bytes, COALESCE(r.disk_bytes, 0) AS reserved_disk_bytes, n.disk_used_bytes,
       COALESCE(r.live_tasks, 0) AS live_tasks,
       n.usage_at, n.last_heartbeat
FROM nodes n LEFT JOIN node_reserved r ON r.node_id = n.id;

-- A task leaving its node's live states gives its host ports back; there is
-- no counter to release any more, and a task that publishes no port has
-- nothing to give back: the trigger does not even fire for it.
DROP TRIGGER tasks_left_node ON tasks;
CREATE TRIGGER tasks_left_node AFTER UPDATE OF state ON tasks FOR EACH ROW
    WHEN (OLD.state IN ('scheduled', 'starting', 'running') AND NEW.state NOT IN ('scheduled', 'starting', 'running')
          AND OLD.ports <> '[]'::jsonb)
    EXECUTE FUNCTION orch_task_left_node();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_task_left_node() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM node_ports WHERE task_id = OLD.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

ALTER TABLE nodes
    DROP COLUMN reserved_cpu_millis,
    DROP COLUMN reserved_memory_bytes,
    DROP COLUMN reserved_disk_bytes;

-- +goose Down
DROP TRIGGER tasks_left_node ON tasks;
CREATE TRIGGER tasks_left_node AFTER UPDATE OF state ON tasks FOR EACH ROW
    WHEN (OLD.state IN ('scheduled', 'starting', 'running') AND NEW.state NOT IN ('scheduled', 'starting', 'running'))
    EXECUTE FUNCTION orch_task_left_node();
ALTER TABLE nodes
    ADD COLUMN reserved_cpu_millis   bigint NOT NULL DEFAULT 0 CHECK (reserved_cpu_millis >= 0),
    ADD COLUMN reserved_memory_bytes bigint NOT NULL DEFAULT 0 CHECK (reserved_memory_bytes >= 0),
    ADD COLUMN reserved_disk_bytes   bigint NOT NULL DEFAULT 0 CHECK (reserved_disk_bytes >= 0);
UPDATE nodes n SET reserved_cpu_millis = r.cpu_millis, reserved_memory_bytes = r.memory_bytes,
    reserved_disk_bytes = r.disk_bytes
FROM node_reserved r WHERE r.node_id = n.id;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_task_left_node() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE nodes SET
        reserved_cpu_millis   = reserved_cpu_millis - OLD.cpu_millis,
        reserved_memory_bytes = reserved_memory_bytes - OLD.memory_bytes,
        reserved_disk_bytes   = reserved_disk_bytes - OLD.disk_bytes,
        updated_at = now()
    WHERE id = OLD.node_id;
    DELETE FROM node_ports WHERE task_id = OLD.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE OR REPLACE VIEW report_node_capacity AS
SELECT n.name AS node, n.state, n.cordoned,
       n.cpu_millis, n.reserved_cpu_millis, n.cpu_percent AS cpu_used_percent, n.load1,
       n.memory_bytes, n.reserved_memory_bytes, n.memory_used_bytes,
       n.disk_bytes, n.reserved_disk_bytes, n.disk_used_bytes,
       (SELECT count(*) FROM tasks t WHERE t.node_id = n.id AND t.state IN ('scheduled', 'starting', 'running')) AS live_tasks,
       n.usage_at, n.last_heartbeat
FROM nodes n;
DROP VIEW node_reserved;
