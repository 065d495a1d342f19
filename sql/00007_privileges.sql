-- +goose Up
-- Containers with privileges or on the host's network. Only an admin-scoped
-- API request may ask for them, and only agents started with
-- --allow-privileged run them.
ALTER TABLE tasks
    ADD COLUMN privileged boolean NOT NULL DEFAULT false,
    ADD COLUMN network    text NOT NULL DEFAULT '' CHECK (network IN ('', 'bridge', 'host', 'none'));

-- +goose Down
ALTER TABLE tasks DROP COLUMN network, DROP COLUMN privileged;
