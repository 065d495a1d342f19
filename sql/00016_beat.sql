-- +goose Up
-- The heartbeat as a function. Through a transaction pooler every statement
-- goes out unnamed and PostgreSQL parses and plans it anew each time
-- (prepared statements do not survive the pooler); the heartbeat, the
-- statement a fleet sends most, then cost the server about 450 µs of CPU,
-- two thirds of it planning. A PL/pgSQL function's statements are planned
-- once per server connection and their plans kept, and the pooler's server
-- connections live long: called as one short SELECT, a beat costs about
-- half as much through the pooler, and the same as before on a direct
-- connection. It is the statement queue/postgres sent before (Beat), in the
-- caller's rights: an agent with a role of its own may beat for its node
-- only, as before. A node that comes back (from down or unhealthy) to ready
-- wakes the schedulers: there is room again.
-- +goose StatementBegin
CREATE FUNCTION orch_beat(p_node uuid, p_state text, p_problem text, p_engine_down boolean,
                          p_down_for float8, p_every_ms integer)
RETURNS TABLE (was text, draining boolean, heartbeat_interval_ms integer, db_time timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_was text;
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
        updated_at = now()
    WHERE n.id = p_node
    RETURNING v_was, n.draining, n.heartbeat_interval_ms, clock_timestamp();
    IF v_was <> 'ready' AND p_state = 'ready' THEN
        PERFORM pg_notify('orch_pending', '');
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION orch_beat(uuid, text, text, boolean, float8, integer);
