-- +goose Up
-- A busy agent does not need its leases read at every beat. The digest of
-- 00060_beat_digest.sql reads every starting and running task of the node,
-- and hashes each (md5 of its id and attempt): 2.9 ms a beat for a node
-- with 500 of them on an idle server (0.7 ms of it the read, the rest the
-- hashing), and 8.4 ms on average in the bench's drain, where the agents'
-- beats took 44 s of the server's time, more than the scheduling passes.
-- Yet an agent with starts or stops under way ignores the leases, because
-- its own writes are on their way (agent.Agent.heed). Such an agent now
-- says so (p_leases false), and its beat returns stops, leases and
-- lease_digest as NULL; whether tasks wait to be claimed and how many
-- volumes wait to be deleted are still read, from the index entries of the
-- ones that do. Older agents send 13 arguments and get the leases, as
-- before.
--
-- The beat also locks its node's row FOR NO KEY UPDATE, the lock its
-- UPDATE takes anyway, instead of FOR UPDATE, which waited for every
-- transaction holding the row FOR KEY SHARE: the foreign-key check of
-- each task a scheduling pass places on the node takes that, and holds it
-- until the pass commits (50 to 80 ms a pass in the bench's pipeline), so
-- beats queued behind passes. Beats and sweeps of one node still take
-- turns: the two locks conflict with each other.
-- +goose StatementBegin
DROP FUNCTION orch_beat(uuid, text, text, boolean, float8, integer, real, real, bigint, bigint, bigint, bigint, float8);
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION orch_beat(p_node uuid, p_state text, p_problem text, p_engine_down boolean,
                          p_down_for float8, p_every_ms integer,
                          p_cpu real, p_load1 real, p_memory_used bigint, p_memory_total bigint,
                          p_disk_used bigint, p_disk_total bigint, p_retention_s float8,
                          p_leases boolean DEFAULT true)
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
    SELECT n.state INTO v_was FROM nodes n WHERE n.id = p_node FOR NO KEY UPDATE;
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
           (SELECT count(*) FROM volumes v WHERE v.node_id = p_node AND v.delete_requested_at IS NOT NULL)
    INTO scheduled, volume_deletes;
    IF p_leases THEN
        SELECT count(*) FILTER (WHERE t.desired_state = 'stopped'),
               count(*),
               COALESCE(bit_xor(('x' || substr(md5(t.id::text || '/' || t.attempt), 1, 16))::bit(64)::bigint), 0)
        INTO stops, leases, lease_digest
        FROM tasks t
        WHERE t.node_id = p_node AND t.state IN ('starting', 'running');
    END IF;
    RETURN NEXT;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DROP FUNCTION orch_beat(uuid, text, text, boolean, float8, integer, real, real, bigint, bigint, bigint, bigint, float8, boolean);
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
