-- +goose Up
-- Secrets and container limits.
--
-- A task's secrets are write-only: tasks.secret_keys names them (that much
-- is shown), and task_secrets holds their values sealed with the cluster's
-- key (AES-256-GCM with the task's id as additional data; package
-- queue/secrets), so a dump of the database or a report user sees only
-- ciphertext. Only the agent of the node the task is placed on may read
-- the row, and only while the task is live there.
ALTER TABLE tasks
    ADD COLUMN secret_keys text[] NOT NULL DEFAULT '{}',
    -- pids_limit lowers the node's process limit for the task's container
    -- (0: the node's).
    ADD COLUMN pids_limit bigint NOT NULL DEFAULT 0 CHECK (pids_limit >= 0);

CREATE TABLE task_secrets (
    task_id uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    sealed  bytea NOT NULL
);
ALTER TABLE task_secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_task_secrets ON task_secrets FOR SELECT
    USING (EXISTS (SELECT 1 FROM tasks t WHERE t.id = task_secrets.task_id
                                           AND t.node_id = (SELECT orch_agent_node_id())
                                           AND t.state IN ('scheduled', 'starting', 'running')));

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        GRANT SELECT ON task_secrets TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE task_secrets;
ALTER TABLE tasks DROP COLUMN pids_limit, DROP COLUMN secret_keys;
