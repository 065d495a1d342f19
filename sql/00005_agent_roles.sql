-- +goose Up
-- Least-privilege agents. An agent may connect with a role of its own
-- (`orch node token NODE` makes one). Row-level security, enforced by
-- Postgres and not by the agent's good manners, then lets it read and change
-- only its own node's row, the tasks placed on it, and its own stats and
-- logs; column privileges keep it from changing what a task runs. The
-- coordinator connects as the owner of the tables, which row-level security
-- does not restrict; reports read the views, which run as their owner too.

-- agent_roles maps each agent role to the node it may act as.
CREATE TABLE agent_roles (
    role_name  text PRIMARY KEY,
    node_name  text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The node the connected agent role acts as (NULL for any other role). They
-- run as their owner so that they can read agent_roles and nodes whatever
-- the caller may; session_user is the role that logged in.
-- +goose StatementBegin
CREATE FUNCTION orch_agent_node_name() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT node_name FROM agent_roles WHERE role_name = session_user $$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION orch_agent_node_id() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT n.id FROM nodes n JOIN agent_roles r ON r.node_name = n.name WHERE r.role_name = session_user $$;
-- +goose StatementEnd

-- Policies compare with the functions inside a sub-select, which Postgres
-- evaluates once per statement rather than once per row.
ALTER TABLE nodes ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_node ON nodes
    USING (name = (SELECT orch_agent_node_name()))
    WITH CHECK (name = (SELECT orch_agent_node_name()));

-- An agent sees the tasks placed on its node now, and those it ran before
-- (their history names the node); it changes only those on its node now,
-- and may give one back to the queue (node_id NULL) but never hand it to
-- another node.
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_tasks_read ON tasks FOR SELECT
    USING (node_id = (SELECT orch_agent_node_id())
           OR EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = tasks.id AND e.node_id = (SELECT orch_agent_node_id())));
CREATE POLICY agent_tasks_change ON tasks FOR UPDATE
    USING (node_id = (SELECT orch_agent_node_id()))
    WITH CHECK (node_id = (SELECT orch_agent_node_id()) OR node_id IS NULL);

ALTER TABLE task_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_events ON task_events
    USING (node_id = (SELECT orch_agent_node_id()))
    WITH CHECK (node_id = (SELECT orch_agent_node_id()));

ALTER TABLE node_ports ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_ports ON node_ports USING (node_id = (SELECT orch_agent_node_id()));

ALTER TABLE node_stats ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_node_stats ON node_stats
    USING (node_id = (SELECT orch_agent_node_id())) WITH CHECK (node_id = (SELECT orch_agent_node_id()));
ALTER TABLE task_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_task_usage ON task_usage
    USING (node_id = (SELECT orch_agent_node_id())) WITH CHECK (node_id = (SELECT orch_agent_node_id()));
ALTER TABLE task_stats ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_task_stats ON task_stats
    USING (node_id = (SELECT orch_agent_node_id())) WITH CHECK (node_id = (SELECT orch_agent_node_id()));

-- Logs belong to the tasks the node ran.
ALTER TABLE task_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_logs ON task_logs
    USING (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_logs.task_id AND e.node_id = (SELECT orch_agent_node_id())))
    WITH CHECK (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_logs.task_id AND e.node_id = (SELECT orch_agent_node_id())));
ALTER TABLE task_log_totals ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_log_totals ON task_log_totals
    USING (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_log_totals.task_id AND e.node_id = (SELECT orch_agent_node_id())))
    WITH CHECK (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_log_totals.task_id AND e.node_id = (SELECT orch_agent_node_id())));

-- Nothing else is an agent's business.
ALTER TABLE scheduler_cursor ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_roles ENABLE ROW LEVEL SECURITY;

-- orch_agent is the group role of every agent role; it holds the
-- privileges. Roles belong to the whole server, so it may exist already
-- (another orch database on the same server); a migrating user who may not
-- create roles gets a notice, and agents then connect as the owner.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        CREATE ROLE orch_agent NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'orch: cannot create role orch_agent (%); per-agent roles will not be available', SQLERRM;
-- Roles belong to the whole server: a migration of another database of it
-- may have created the role between the check and the create.
WHEN unique_violation OR duplicate_object THEN
    NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        RETURN;
    END IF;
    GRANT SELECT, INSERT (id, name, address, labels, cpu_millis, memory_bytes, disk_bytes),
          UPDATE (address, labels, cpu_millis, memory_bytes, disk_bytes,
                  reserved_cpu_millis, reserved_memory_bytes, reserved_disk_bytes,
                  cpu_percent, load1, memory_used_bytes, disk_used_bytes, usage_at,
                  state, health_error, state_changed_at, engine_down_since, last_heartbeat, updated_at)
        ON nodes TO orch_agent;
    GRANT SELECT,
          UPDATE (state, node_id, container_id, exit_code, error, reason, restarts, started_at, finished_at,
                  not_before, health, health_detail, health_at, updated_at)
        ON tasks TO orch_agent;
    GRANT SELECT, INSERT ON task_events TO orch_agent;
    GRANT SELECT, DELETE ON node_ports TO orch_agent;
    GRANT SELECT, INSERT, DELETE ON node_stats, task_stats TO orch_agent;
    GRANT SELECT, INSERT, UPDATE ON task_usage TO orch_agent;
    GRANT SELECT, INSERT, DELETE ON task_logs TO orch_agent;
    GRANT SELECT, INSERT, UPDATE ON task_log_totals TO orch_agent;
    GRANT USAGE ON SEQUENCE task_events_id_seq, node_stats_id_seq, task_stats_id_seq, task_logs_id_seq TO orch_agent;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        REVOKE ALL ON nodes, tasks, task_events, node_ports, node_stats, task_stats, task_usage, task_logs,
            task_log_totals FROM orch_agent;
        REVOKE ALL ON SEQUENCE task_events_id_seq, node_stats_id_seq, task_stats_id_seq, task_logs_id_seq FROM orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE agent_roles DISABLE ROW LEVEL SECURITY;
ALTER TABLE scheduler_cursor DISABLE ROW LEVEL SECURITY;
DROP POLICY agent_log_totals ON task_log_totals;
ALTER TABLE task_log_totals DISABLE ROW LEVEL SECURITY;
DROP POLICY agent_logs ON task_logs;
ALTER TABLE task_logs DISABLE ROW LEVEL SECURITY;
DROP POLICY agent_task_stats ON task_stats;
ALTER TABLE task_stats DISABLE ROW LEVEL SECURITY;
DROP POLICY agent_task_usage ON task_usage;
ALTER TABLE task_usage DISABLE ROW LEVEL SECURITY;
DROP POLICY agent_node_stats ON node_stats;
ALTER TABLE node_stats DISABLE ROW LEVEL SECURITY;
DROP POLICY agent_ports ON node_ports;
ALTER TABLE node_ports DISABLE ROW LEVEL SECURITY;
DROP POLICY agent_events ON task_events;
ALTER TABLE task_events DISABLE ROW LEVEL SECURITY;
DROP POLICY agent_tasks_change ON tasks;
DROP POLICY agent_tasks_read ON tasks;
ALTER TABLE tasks DISABLE ROW LEVEL SECURITY;
DROP POLICY agent_node ON nodes;
ALTER TABLE nodes DISABLE ROW LEVEL SECURITY;
DROP FUNCTION orch_agent_node_id();
DROP FUNCTION orch_agent_node_name();
DROP TABLE agent_roles;
