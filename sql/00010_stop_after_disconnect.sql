-- +goose Up
-- A task may ask its agent to stop it once the agent has been out of touch
-- with the database for this long (0, the default: never, as Nomad's
-- disconnect.stop_on_client_after is off by default). A node that is cut off
-- is declared down and its tasks run again elsewhere; a task that must never
-- run twice at once sets this below the node-down timeout, and its agent
-- stops the old container before the replacement can start.
ALTER TABLE tasks ADD COLUMN stop_after_disconnect_ms bigint NOT NULL DEFAULT 0
    CHECK (stop_after_disconnect_ms >= 0);

-- +goose Down
ALTER TABLE tasks DROP COLUMN stop_after_disconnect_ms;
