-- +goose Up
-- Named volumes and host mounts (package queue: Mount, Volume).
--
-- tasks.volumes is the spec's mounts. A named volume lives on one node: the
-- row in volumes is written by the scheduling pass that first places a task
-- naming it (in the statement that places the task), and every later task
-- naming it is placed on that node. The row stays after the task, as the
-- Docker volume does, until a user deletes it: the coordinator sets
-- delete_requested_at (refused while a placed task mounts it), the node's
-- agent removes the Docker volume and then the row, or records why it
-- could not yet and tries again.
ALTER TABLE tasks ADD COLUMN volumes jsonb NOT NULL DEFAULT '[]';

CREATE TABLE volumes (
    name                text PRIMARY KEY,
    node_id             uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    created_at          timestamptz NOT NULL DEFAULT now(),
    delete_requested_at timestamptz,
    error               text NOT NULL DEFAULT ''
);
CREATE INDEX volumes_node ON volumes (node_id);

-- A placement writes its volumes with INSERT ... ON CONFLICT (name) DO
-- UPDATE SET node_id = EXCLUDED.node_id. The pass has already refused, in
-- the same statement, a task whose volume it saw on another node or being
-- deleted; what it could not see is a row another pass committed after the
-- statement began (two coordinators placing two tasks of one new volume at
-- once). Then the update reaches this trigger, which fails the pass: it is
-- rolled back whole and the next pass sees the row.
-- +goose StatementBegin
CREATE FUNCTION orch_volume_placed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.node_id <> OLD.node_id THEN
        RAISE EXCEPTION 'volume % lives on another node', OLD.name USING ERRCODE = 'serialization_failure';
    END IF;
    IF OLD.delete_requested_at IS NOT NULL THEN
        RAISE EXCEPTION 'volume % is being deleted', OLD.name USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER volumes_placed BEFORE UPDATE OF node_id ON volumes
    FOR EACH ROW EXECUTE FUNCTION orch_volume_placed();

-- Agents see the volumes of their own node, report the ones Docker holds
-- for it that have no row (a database restored from an older backup),
-- remove the rows they have removed from Docker, and record why one could
-- not be removed.
ALTER TABLE volumes ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_volumes ON volumes
    USING (node_id = (SELECT orch_agent_node_id()))
    WITH CHECK (node_id = (SELECT orch_agent_node_id()));
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        GRANT SELECT, INSERT (name, node_id), DELETE, UPDATE (error, delete_requested_at) ON volumes TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE volumes;
DROP FUNCTION orch_volume_placed();
ALTER TABLE tasks DROP COLUMN volumes;
