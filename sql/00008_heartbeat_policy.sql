-- +goose Up
-- Heartbeats scale with the cluster, as Nomad's do: the coordinators keep
-- heartbeat_policy.interval_ms such that all live nodes together beat at
-- most --max-heartbeats-per-second, and an agent beats at that interval when
-- it is longer than its own --heartbeat-interval. A thousand idle agents
-- would otherwise cost the database a cold backend wake-up each, every two
-- seconds.
CREATE TABLE heartbeat_policy (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    interval_ms integer NOT NULL DEFAULT 0 CHECK (interval_ms >= 0),
    live_nodes  integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO heartbeat_policy DEFAULT VALUES;

-- The interval the node's agent beats at now; the node's allowed silence
-- follows it, so a node told to beat less often is not declared down for it,
-- even by a coordinator whose policy has since shrunk again.
ALTER TABLE nodes ADD COLUMN heartbeat_interval_ms integer NOT NULL DEFAULT 2000
    CHECK (heartbeat_interval_ms > 0);

-- How long a node may stay silent before it is down: the coordinator's
-- --node-down-timeout, or, for a node beating less often than every half
-- timeout, its interval plus half the timeout.
-- +goose StatementBegin
CREATE FUNCTION node_silence_allowed(heartbeat_interval_ms integer, timeout_s float8) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT make_interval(secs => greatest(timeout_s, heartbeat_interval_ms / 1000.0 + timeout_s / 2))
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        GRANT SELECT ON heartbeat_policy TO orch_agent;
        GRANT UPDATE (heartbeat_interval_ms) ON nodes TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        REVOKE ALL ON heartbeat_policy FROM orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd
DROP FUNCTION node_silence_allowed(integer, float8);
ALTER TABLE nodes DROP COLUMN heartbeat_interval_ms;
DROP TABLE heartbeat_policy;
