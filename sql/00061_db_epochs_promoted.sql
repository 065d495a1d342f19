-- +goose Up
-- A standby promoted before any coordinator's sweep on the old primary
-- reached it has no epoch at all, and 00045_database_epochs.sql counted
-- such a database from its server's start: for a promoted standby that is
-- when the standby started, typically long before the failover, so every
-- node whose last heartbeat was replayed from before the primary died was
-- declared down at the first sweep. A failover a second after the cluster
-- came up showed it (cmd/orch's failover test under load). A server on a
-- timeline after the first has been promoted at least once, so with no
-- epoch recorded it counts from now instead: nodes get at most one more
-- timeout of grace, never less. A new install, on the first timeline,
-- still counts from its server's start.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_db_back_since() RETURNS timestamptz
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
               CASE WHEN tl > 1 OR EXISTS (SELECT 1 FROM db_epochs) THEN now() ELSE pg_postmaster_start_time() END
        ON CONFLICT DO NOTHING;
        SELECT seen_at INTO since FROM db_epochs WHERE started_at = pg_postmaster_start_time() AND timeline = tl;
    END IF;
    RETURN greatest(since, pg_postmaster_start_time());
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_db_back_since() RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
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
