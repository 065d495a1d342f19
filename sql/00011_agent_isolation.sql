-- +goose Up
-- Agent isolation, closed (see 00005). A node's agent role could append an
-- event naming its own node to any task, and the policies on tasks and
-- task_logs trusted such events: one forged event opened another node's
-- task (its env) and its logs. It could also write its node's capacity,
-- labels and reserved_* counters, and so advertise room it does not have,
-- or privileges, and attract every new task. Now:
--
--   * events, logs, log totals and usage may be written only for a task that
--     is placed on the agent's node now; tasks may be changed only while they
--     are live there (a finished task of the node is history, not the
--     agent's to revive);
--   * capacity, address and labels are written only through
--     orch_register_node, which bounds what an agent role may claim
--     (agent_roles: the capacity an admin allowed or the node first
--     registered with, and whether it may run privileged containers);
--   * reservations and host ports are released by a trigger when a task
--     leaves its node's live states, whoever moves it, so no role needs to
--     write the counters or the ports but the coordinators' placement.

-- Release what a task held on its node the moment it stops holding it. It
-- runs as its owner: the agent role that ended the task may not write the
-- counters itself.
-- +goose StatementBegin
CREATE FUNCTION orch_task_left_node() RETURNS trigger
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
CREATE TRIGGER tasks_left_node AFTER UPDATE OF state ON tasks FOR EACH ROW
    WHEN (OLD.state IN ('scheduled', 'starting', 'running') AND NEW.state NOT IN ('scheduled', 'starting', 'running'))
    EXECUTE FUNCTION orch_task_left_node();

-- Whether a task is placed on the connected agent's node now. It runs as its
-- owner, as the functions of 00005 do: a policy on task_events that read
-- tasks directly would loop back through the policy on tasks (which reads
-- task_events), and PostgreSQL refuses such recursion.
-- +goose StatementBegin
CREATE FUNCTION orch_agent_holds(task uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
    AS $$ SELECT EXISTS (SELECT 1 FROM tasks WHERE id = task AND node_id = orch_agent_node_id()) $$;
-- +goose StatementEnd

-- Events: read those naming the node; append only about a task on the node
-- now. (A statement that moves the task and appends its event sees the task
-- as it was before the statement, still on the node.)
DROP POLICY agent_events ON task_events;
CREATE POLICY agent_events_read ON task_events FOR SELECT
    USING (node_id = (SELECT orch_agent_node_id()));
CREATE POLICY agent_events_append ON task_events FOR INSERT
    WITH CHECK (node_id = (SELECT orch_agent_node_id()) AND orch_agent_holds(task_id));

-- Tasks: change only the live ones on the node.
DROP POLICY agent_tasks_change ON tasks;
CREATE POLICY agent_tasks_change ON tasks FOR UPDATE
    USING (node_id = (SELECT orch_agent_node_id()) AND state IN ('scheduled', 'starting', 'running'))
    WITH CHECK (node_id = (SELECT orch_agent_node_id()) OR node_id IS NULL);

-- Logs and their totals: read those of tasks the node ran; write only for a
-- task on the node now.
DROP POLICY agent_logs ON task_logs;
CREATE POLICY agent_logs_read ON task_logs FOR SELECT
    USING (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_logs.task_id AND e.node_id = (SELECT orch_agent_node_id())));
CREATE POLICY agent_logs_insert ON task_logs FOR INSERT WITH CHECK (orch_agent_holds(task_id));
CREATE POLICY agent_logs_delete ON task_logs FOR DELETE USING (orch_agent_holds(task_id));
DROP POLICY agent_log_totals ON task_log_totals;
CREATE POLICY agent_log_totals_read ON task_log_totals FOR SELECT
    USING (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_log_totals.task_id AND e.node_id = (SELECT orch_agent_node_id())));
CREATE POLICY agent_log_totals_insert ON task_log_totals FOR INSERT WITH CHECK (orch_agent_holds(task_id));
CREATE POLICY agent_log_totals_update ON task_log_totals FOR UPDATE USING (orch_agent_holds(task_id));

-- Usage: the rows name the node, and the task must be on it.
DROP POLICY agent_task_usage ON task_usage;
CREATE POLICY agent_task_usage ON task_usage
    USING (node_id = (SELECT orch_agent_node_id()))
    WITH CHECK (node_id = (SELECT orch_agent_node_id()) AND orch_agent_holds(task_id));
DROP POLICY agent_task_stats ON task_stats;
CREATE POLICY agent_task_stats ON task_stats
    USING (node_id = (SELECT orch_agent_node_id()))
    WITH CHECK (node_id = (SELECT orch_agent_node_id()) AND orch_agent_holds(task_id));

-- What an agent role may claim for its node. NULL capacity bounds are set
-- by the node's first registration; an admin sets or raises them with
-- `orch node token NODE --max-cpu ... --max-memory ... --max-disk ...`.
ALTER TABLE agent_roles
    ADD COLUMN max_cpu_millis   bigint,
    ADD COLUMN max_memory_bytes bigint,
    ADD COLUMN max_disk_bytes   bigint,
    ADD COLUMN allow_privileged boolean NOT NULL DEFAULT false;

-- orch_register_node records a node, or refreshes the one of that name (it
-- keeps its id). For an agent role it registers only the role's own node,
-- with at most the capacity the role allows, without any label in the
-- reserved orch.* space, and with orch.allow-privileged only when both the
-- admin (agent_roles) and the agent (privileged) say so. For any other
-- caller (the owner, as in `orch dev`) it takes what it is given.
-- +goose StatementBegin
CREATE FUNCTION orch_register_node(p_id uuid, p_name text, p_address text, p_labels jsonb,
                                   p_cpu bigint, p_memory bigint, p_disk bigint, p_privileged boolean)
    RETURNS SETOF nodes
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    r agent_roles;
    labels jsonb := COALESCE(p_labels, '{}');
BEGIN
    SELECT * INTO r FROM agent_roles WHERE role_name = session_user;
    IF FOUND THEN
        IF r.node_name <> p_name THEN
            RAISE EXCEPTION 'role % may register node % only, not %', session_user, r.node_name, p_name
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        UPDATE agent_roles SET
            max_cpu_millis   = COALESCE(max_cpu_millis, p_cpu),
            max_memory_bytes = COALESCE(max_memory_bytes, p_memory),
            max_disk_bytes   = COALESCE(max_disk_bytes, p_disk)
        WHERE role_name = session_user
        RETURNING * INTO r;
        p_cpu := least(p_cpu, r.max_cpu_millis);
        p_memory := least(p_memory, r.max_memory_bytes);
        p_disk := least(p_disk, r.max_disk_bytes);
        SELECT COALESCE(jsonb_object_agg(key, value), '{}') INTO labels
        FROM jsonb_each(labels) WHERE key NOT LIKE 'orch.%';
        p_privileged := p_privileged AND r.allow_privileged;
    END IF;
    IF p_privileged THEN
        labels := labels || '{"orch.allow-privileged": "true"}';
    ELSE
        labels := labels - 'orch.allow-privileged';
    END IF;
    RETURN QUERY
    INSERT INTO nodes AS n (id, name, address, labels, cpu_millis, memory_bytes, disk_bytes)
    VALUES (p_id, p_name, p_address, labels, p_cpu, p_memory, p_disk)
    ON CONFLICT (name) DO UPDATE SET
        address = EXCLUDED.address, labels = EXCLUDED.labels, cpu_millis = EXCLUDED.cpu_millis,
        memory_bytes = EXCLUDED.memory_bytes, disk_bytes = EXCLUDED.disk_bytes,
        last_heartbeat = now(), updated_at = now()
    RETURNING n.*;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        REVOKE INSERT ON nodes FROM orch_agent;
        REVOKE UPDATE ON nodes FROM orch_agent;
        GRANT UPDATE (cpu_percent, load1, memory_used_bytes, disk_used_bytes, usage_at,
                      state, health_error, state_changed_at, engine_down_since, last_heartbeat,
                      heartbeat_interval_ms, updated_at)
            ON nodes TO orch_agent;
        REVOKE DELETE ON node_ports FROM orch_agent;
        GRANT EXECUTE ON FUNCTION orch_register_node(uuid, text, text, jsonb, bigint, bigint, bigint, boolean) TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd
REVOKE EXECUTE ON FUNCTION orch_register_node(uuid, text, text, jsonb, bigint, bigint, bigint, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION orch_task_left_node() FROM PUBLIC;

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        REVOKE EXECUTE ON FUNCTION orch_register_node(uuid, text, text, jsonb, bigint, bigint, bigint, boolean) FROM orch_agent;
        GRANT INSERT (id, name, address, labels, cpu_millis, memory_bytes, disk_bytes),
              UPDATE (address, labels, cpu_millis, memory_bytes, disk_bytes,
                      reserved_cpu_millis, reserved_memory_bytes, reserved_disk_bytes)
            ON nodes TO orch_agent;
        GRANT DELETE ON node_ports TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd
DROP FUNCTION orch_register_node(uuid, text, text, jsonb, bigint, bigint, bigint, boolean);
ALTER TABLE agent_roles DROP COLUMN allow_privileged, DROP COLUMN max_disk_bytes,
    DROP COLUMN max_memory_bytes, DROP COLUMN max_cpu_millis;
DROP POLICY agent_task_stats ON task_stats;
CREATE POLICY agent_task_stats ON task_stats
    USING (node_id = (SELECT orch_agent_node_id())) WITH CHECK (node_id = (SELECT orch_agent_node_id()));
DROP POLICY agent_task_usage ON task_usage;
CREATE POLICY agent_task_usage ON task_usage
    USING (node_id = (SELECT orch_agent_node_id())) WITH CHECK (node_id = (SELECT orch_agent_node_id()));
DROP POLICY agent_log_totals_update ON task_log_totals;
DROP POLICY agent_log_totals_insert ON task_log_totals;
DROP POLICY agent_log_totals_read ON task_log_totals;
CREATE POLICY agent_log_totals ON task_log_totals
    USING (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_log_totals.task_id AND e.node_id = (SELECT orch_agent_node_id())))
    WITH CHECK (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_log_totals.task_id AND e.node_id = (SELECT orch_agent_node_id())));
DROP POLICY agent_logs_delete ON task_logs;
DROP POLICY agent_logs_insert ON task_logs;
DROP POLICY agent_logs_read ON task_logs;
CREATE POLICY agent_logs ON task_logs
    USING (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_logs.task_id AND e.node_id = (SELECT orch_agent_node_id())))
    WITH CHECK (EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = task_logs.task_id AND e.node_id = (SELECT orch_agent_node_id())));
DROP POLICY agent_tasks_change ON tasks;
CREATE POLICY agent_tasks_change ON tasks FOR UPDATE
    USING (node_id = (SELECT orch_agent_node_id()))
    WITH CHECK (node_id = (SELECT orch_agent_node_id()) OR node_id IS NULL);
DROP POLICY agent_events_append ON task_events;
DROP POLICY agent_events_read ON task_events;
CREATE POLICY agent_events ON task_events
    USING (node_id = (SELECT orch_agent_node_id()))
    WITH CHECK (node_id = (SELECT orch_agent_node_id()));
DROP FUNCTION orch_agent_holds(uuid);
DROP TRIGGER tasks_left_node ON tasks;
DROP FUNCTION orch_task_left_node();
