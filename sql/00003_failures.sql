-- +goose Up
-- Failures: node health and drain, delayed restarts, task health checks.

-- A node is 'unhealthy' while its agent heartbeats but its container engine
-- fails (the engine does not answer, or image pulls keep failing): the
-- scheduler skips it. health_error says why; state_changed_at is when the
-- state last changed. engine_down_since is set while the engine does not
-- answer at all: its containers can be neither watched nor managed, so once
-- that has lasted longer than the node-down timeout the node's tasks are
-- moved (failing pulls alone only keep new work away).
ALTER TABLE nodes DROP CONSTRAINT nodes_state_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_state_check CHECK (state IN ('ready', 'down', 'unhealthy'));
ALTER TABLE nodes
    ADD COLUMN health_error     text NOT NULL DEFAULT '',
    ADD COLUMN state_changed_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN engine_down_since timestamptz,
    -- a draining node is also cordoned; its agent stops its tasks so they
    -- move elsewhere, and at drain_deadline the sweeper moves what is left
    ADD COLUMN draining         boolean NOT NULL DEFAULT false,
    ADD COLUMN drain_deadline   timestamptz;

-- not_before delays a pending task: a restart waits out its backoff in the
-- queue itself, so it survives the crash of any process.
-- health_check is the task's probe (NULL: none); health is what the agent
-- last saw: '' (no check or not running), starting, healthy or unhealthy.
ALTER TABLE tasks
    ADD COLUMN not_before    timestamptz,
    ADD COLUMN health_check  jsonb,
    ADD COLUMN health        text NOT NULL DEFAULT ''
                             CHECK (health IN ('', 'starting', 'healthy', 'unhealthy')),
    ADD COLUMN health_detail text NOT NULL DEFAULT '',
    ADD COLUMN health_at     timestamptz;

-- +goose Down
ALTER TABLE tasks
    DROP COLUMN health_at,
    DROP COLUMN health_detail,
    DROP COLUMN health,
    DROP COLUMN health_check,
    DROP COLUMN not_before;
UPDATE nodes SET state = 'ready' WHERE state = 'unhealthy';
ALTER TABLE nodes
    DROP COLUMN drain_deadline,
    DROP COLUMN draining,
    DROP COLUMN engine_down_since,
    DROP COLUMN state_changed_at,
    DROP COLUMN health_error;
ALTER TABLE nodes DROP CONSTRAINT nodes_state_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_state_check CHECK (state IN ('ready', 'down'));
