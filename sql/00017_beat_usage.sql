-- +goose Up
-- The heartbeat carries the node's latest usage. An idle agent wrote its
-- node stats (reportUsageSQL) in a statement of its own, and at the
-- cluster's longest heartbeat interval the stats come as often as the
-- beats: through a transaction pooler half the server CPU an idle fleet
-- cost went to stats writes. orch_beat with the usage figures writes both
-- in one call and one transaction: the beat as 00016_beat.sql does, then,
-- when p_cpu is not null, the latest figures on the node's row (the same
-- UPDATE, so one row version per beat), a node_stats row and the pruning
-- of that node's history past p_retention_s seconds, all stamped with the
-- database's clock, as ReportUsage does. Caller's rights, as before: an
-- agent with a role of its own writes only its node's row and history
-- (00005_agent_roles.sql, 00011_agent_isolation.sql). The 6-argument
-- orch_beat stays for agents that carry no usage.
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

-- +goose Down
DROP FUNCTION orch_beat(uuid, text, text, boolean, float8, integer, real, real, bigint, bigint, bigint, bigint, float8);
