-- +goose Up
-- When the database came back. A coordinator declares a node down when its
-- agent has not heartbeated for the timeout; but while the database itself
-- was away (restarted, or failed over to a standby) no agent could
-- heartbeat, and that silence says nothing about them. So the timeout
-- counts from the database's return, not only from the nodes' last
-- heartbeats.
--
-- pg_postmaster_start_time() says when a restarted server came back, but
-- not when a standby was promoted: a promoted standby keeps its own start
-- time, typically long before the failover, while the heartbeats it
-- replayed stop at the old primary's death. An epoch is one life of a
-- primary: its postmaster's start time and its WAL timeline, which every
-- promotion bumps. db_epochs remembers when a coordinator first saw each
-- one (at its first sweep after the return, within a sweep interval), and
-- orch_db_back_since() answers with that moment, recording the epoch on
-- first sight. The table replicates like any other, so a standby's copy
-- holds the old primary's epochs and the first sweep on the promoted one
-- adds its own. A database that has no epoch at all yet (a new install, or
-- one just upgraded to this migration) counts from the server's start, as
-- before: nothing came back there.
CREATE TABLE db_epochs (
    started_at timestamptz NOT NULL,
    timeline   bigint NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (started_at, timeline)
);

-- +goose StatementBegin
CREATE FUNCTION orch_db_back_since() RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- The WAL file name starts with the timeline being written, in hex.
    tl bigint := ('x' || lpad(substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), 16, '0'))::bit(64)::bigint;
    since timestamptz;
BEGIN
    SELECT seen_at INTO since FROM db_epochs WHERE started_at = pg_postmaster_start_time() AND timeline = tl;
    IF NOT FOUND THEN
        INSERT INTO db_epochs (started_at, timeline, seen_at)
        SELECT pg_postmaster_start_time(), tl,
               CASE WHEN EXISTS (SELECT 1 FROM db_epochs) THEN now() ELSE pg_postmaster_start_time() END
        ON CONFLICT DO NOTHING;
        SELECT seen_at INTO since FROM db_epochs WHERE started_at = pg_postmaster_start_time() AND timeline = tl;
    END IF;
    RETURN greatest(since, pg_postmaster_start_time());
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION orch_db_back_since();
DROP TABLE db_epochs;
