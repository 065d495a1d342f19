-- +goose Up
-- The heartbeat also tells the agent what the database holds for its node,
-- so that an idle agent need not ask. Each of a fleet's idle agents sent,
-- besides its beats, five unprepared statements a cycle: a safety-net
-- claim (with the lease check and the stop requests before it) for a
-- wake-up it might have missed, and a reconcile (the node's tasks, its
-- volumes to delete). Through a transaction pooler each is parsed and
-- planned anew, and together they cost PostgreSQL more than the beats.
-- orch_beat now also returns, read with plans kept per server connection
-- (00016_beat.sql): whether tasks wait to be claimed (whether, not how
-- many: a node may have thousands placed on it in a backlog, and counting
-- them made every beat read them all), how many running ones a user asked
-- to stop, how many leases the node holds (starting or
-- running) with a digest of them (the XOR over its tasks of the first 64
-- bits of md5('<task id>/<attempt>'), which package agent computes the same
-- way), and how many of its volumes wait to be deleted. An agent whose
-- wake-ups come (LISTEN or a coordinator's long-poll) then skips its
-- safety net when the beat finds nothing it does not know of, and asks
-- when it does, within one beat instead of one safety-net interval
-- (agent.Agent's idle cycle). The extra columns come from the node's
-- entries in tasks_node_live_idx and volumes_node: nothing for an idle
-- node. Measured with pgbench against 10,000 idle nodes (simple protocol,
-- as through a pooler; 2 shared cores), a beat's execution went from
-- 0.11-0.13 ms to 0.13-0.16 ms, about a fifth more, for the five
-- statements a cycle it saves; the same digest as one RETURN QUERY with a
-- subquery for the volumes cost a third more. A node's starting and
-- running tasks are read at every beat, bounded by what one machine runs.
-- Older agents name the four columns they read, so they go on working.
-- The 6-argument orch_beat is left as it was.
-- +goose StatementBegin
DROP FUNCTION orch_beat(uuid, text, text, boolean, float8, integer, real, real, bigint, bigint, bigint, bigint, float8);
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION orch_beat(p_node uuid, p_state text, p_problem text, p_engine_down boolean,
                          p_down_for float8, p_every_ms integer,
                          p_cpu real, p_load1 real, p_memory_used bigint, p_memory_total bigint,
                          p_disk_used bigint, p_disk_total bigint, p_retention_s float8)
RETURNS TABLE (was text, draining boolean, heartbeat_interval_ms integer, db_time timestamptz,
               scheduled boolean, stops integer, leases integer, lease_digest bigint, volume_deletes integer)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_was text;
    v_draining boolean;
    v_interval integer;
    v_db_time timestamptz;
    v_usage boolean := p_cpu IS NOT NULL;
BEGIN
    -- Heartbeats commit asynchronously: the next beat repeats a lost one.
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT n.state INTO v_was FROM nodes n WHERE n.id = p_node FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE nodes n SET
        last_heartbeat = now(),
        state = p_state,
        health_error = p_problem,
        state_changed_at = CASE WHEN n.state <> p_state THEN now() ELSE n.state_changed_at END,
        engine_down_since = CASE WHEN NOT p_engine_down THEN NULL
                                 ELSE COALESCE(n.engine_down_since, now() - make_interval(secs => p_down_for)) END,
        heartbeat_interval_ms = greatest(p_every_ms, (SELECT hp.interval_ms FROM heartbeat_policy hp)),
        cpu_percent = CASE WHEN v_usage THEN p_cpu ELSE n.cpu_percent END,
        load1 = CASE WHEN v_usage THEN p_load1 ELSE n.load1 END,
        memory_used_bytes = CASE WHEN v_usage THEN p_memory_used ELSE n.memory_used_bytes END,
        disk_used_bytes = CASE WHEN v_usage THEN p_disk_used ELSE n.disk_used_bytes END,
        usage_at = CASE WHEN v_usage THEN now() ELSE n.usage_at END,
        updated_at = now()
    WHERE n.id = p_node
    RETURNING n.draining, n.heartbeat_interval_ms, clock_timestamp() INTO v_draining, v_interval, v_db_time;
    IF v_usage THEN
        INSERT INTO node_stats (node_id, at, cpu_percent, load1, memory_used_bytes, memory_total_bytes,
                                disk_used_bytes, disk_total_bytes)
        VALUES (p_node, now(), p_cpu, p_load1, p_memory_used, p_memory_total, p_disk_used, p_disk_total);
        DELETE FROM node_stats s WHERE s.node_id = p_node AND s.at < now() - make_interval(secs => p_retention_s);
    END IF;
    IF v_was <> 'ready' AND p_state = 'ready' THEN
        PERFORM pg_notify('orch_pending', '');
    END IF;
    was := v_was; draining := v_draining; heartbeat_interval_ms := v_interval; db_time := v_db_time;
    SELECT EXISTS (SELECT FROM tasks w
                   WHERE w.node_id = p_node AND w.state = 'scheduled' AND w.desired_state = 'running'),
           count(*) FILTER (WHERE t.desired_state = 'stopped'),
           count(*),
           COALESCE(bit_xor(('x' || substr(md5(t.id::text || '/' || t.attempt), 1, 16))::bit(64)::bigint), 0),
           (SELECT count(*) FROM volumes v WHERE v.node_id = p_node AND v.delete_requested_at IS NOT NULL)
    INTO scheduled, stops, leases, lease_digest, volume_deletes
    FROM tasks t
    WHERE t.node_id = p_node AND t.state IN ('starting', 'running');
    RETURN NEXT;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DROP FUNCTION orch_beat(uuid, text, text, boolean, float8, integer, real, real, bigint, bigint, bigint, bigint, float8);
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION orch_beat(p_node uuid, p_state text, p_problem text, p_engine_down boolean,
                          p_down_for float8, p_every_ms integer,
                          p_cpu real, p_load1 real, p_memory_used bigint, p_memory_total bigint,
                          p_disk_used bigint, p_disk_total bigint, p_retention_s float8)
RETURNS TABLE (was text, draining boolean, heartbeat_interval_ms integer, db_time timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_was text;
    v_usage boolean := p_cpu IS NOT NULL;
BEGIN
    -- Heartbeats commit asynchronously: the next beat repeats a lost one.
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT n.state INTO v_was FROM nodes n WHERE n.id = p_node FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE nodes n SET
        last_heartbeat = now(),
        state = p_state,
        health_error = p_problem,
        state_changed_at = CASE WHEN n.state <> p_state THEN now() ELSE n.state_changed_at END,
        engine_down_since = CASE WHEN NOT p_engine_down THEN NULL
                                 ELSE COALESCE(n.engine_down_since, now() - make_interval(secs => p_down_for)) END,
        heartbeat_interval_ms = greatest(p_every_ms, (SELECT hp.interval_ms FROM heartbeat_policy hp)),
        cpu_percent = CASE WHEN v_usage THEN p_cpu ELSE n.cpu_percent END,
        load1 = CASE WHEN v_usage THEN p_load1 ELSE n.load1 END,
        memory_used_bytes = CASE WHEN v_usage THEN p_memory_used ELSE n.memory_used_bytes END,
        disk_used_bytes = CASE WHEN v_usage THEN p_disk_used ELSE n.disk_used_bytes END,
        usage_at = CASE WHEN v_usage THEN now() ELSE n.usage_at END,
        updated_at = now()
    WHERE n.id = p_node
    RETURNING v_was, n.draining, n.heartbeat_interval_ms, clock_timestamp();
    IF v_usage THEN
        INSERT INTO node_stats (node_id, at, cpu_percent, load1, memory_used_bytes, memory_total_bytes,
                                disk_used_bytes, disk_total_bytes)
        VALUES (p_node, now(), p_cpu, p_load1, p_memory_used, p_memory_total, p_disk_used, p_disk_total);
        DELETE FROM node_stats s WHERE s.node_id = p_node AND s.at < now() - make_interval(secs => p_retention_s);
    END IF;
    IF v_was <> 'ready' AND p_state = 'ready' THEN
        PERFORM pg_notify('orch_pending', '');
    END IF;
END
$$;
-- +goose StatementEnd
