-- +goose Up
-- A restart's backoff starts over once an attempt has run long enough
-- (--restart-backoff-reset, 10 minutes by default, as Kubernetes resets its
-- crash-loop backoff): a task that ran for days and crashes once restarts
-- after the base delay, not after the longest one. backoff_step is the
-- exponent; restarts still counts every restart, for --max-restarts.
ALTER TABLE tasks ADD COLUMN backoff_step integer NOT NULL DEFAULT 0 CHECK (backoff_step >= 0);

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        GRANT UPDATE (backoff_step) ON tasks TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE tasks DROP COLUMN backoff_step;
