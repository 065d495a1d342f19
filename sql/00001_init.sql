-- +goose Up
-- nodes: one row per machine running an agent. Capacity is what the agent
-- offers; reserved_* is the sum of the requests of its live tasks, kept by the
-- same transactions that place and end tasks, so the scheduler can guard
-- against oversubscription with a single conditional UPDATE.
CREATE TABLE nodes (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL UNIQUE,
    address               text NOT NULL DEFAULT '',
    labels                jsonb NOT NULL DEFAULT '{}',
    cpu_millis            bigint NOT NULL CHECK (cpu_millis >= 0),
    memory_bytes          bigint NOT NULL CHECK (memory_bytes >= 0),
    disk_bytes            bigint NOT NULL CHECK (disk_bytes >= 0),
    reserved_cpu_millis   bigint NOT NULL DEFAULT 0 CHECK (reserved_cpu_millis >= 0),
    reserved_memory_bytes bigint NOT NULL DEFAULT 0 CHECK (reserved_memory_bytes >= 0),
    reserved_disk_bytes   bigint NOT NULL DEFAULT 0 CHECK (reserved_disk_bytes >= 0),
    -- latest usage the agent measured (history lives elsewhere); the
    -- scheduler weighs it, reports read it
    cpu_percent           real NOT NULL DEFAULT 0,
    load1                 real NOT NULL DEFAULT 0,
    memory_used_bytes     bigint NOT NULL DEFAULT 0,
    disk_used_bytes       bigint NOT NULL DEFAULT 0,
    usage_at              timestamptz,
    state                 text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'down')),
    cordoned              boolean NOT NULL DEFAULT false,
    last_heartbeat        timestamptz NOT NULL DEFAULT now(),
    registered_at         timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- tasks: one row per task for its whole life; restarts and re-placements are
-- new attempts of the same row, each recorded in task_events.
CREATE TABLE tasks (
    id             uuid PRIMARY KEY,
    name           text NOT NULL,
    image          text NOT NULL,
    command        text[] NOT NULL DEFAULT '{}',
    env            jsonb NOT NULL DEFAULT '{}',
    labels         jsonb NOT NULL DEFAULT '{}',
    cpu_millis     bigint NOT NULL DEFAULT 0 CHECK (cpu_millis >= 0),
    memory_bytes   bigint NOT NULL DEFAULT 0 CHECK (memory_bytes >= 0),
    disk_bytes     bigint NOT NULL DEFAULT 0 CHECK (disk_bytes >= 0),
    restart_policy text NOT NULL DEFAULT 'never' CHECK (restart_policy IN ('never', 'on-failure', 'always')),
    max_restarts   integer NOT NULL DEFAULT 0 CHECK (max_restarts >= 0),
    ports          jsonb NOT NULL DEFAULT '[]',
    desired_state  text NOT NULL DEFAULT 'running' CHECK (desired_state IN ('running', 'stopped')),
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'scheduled', 'starting', 'running', 'completed', 'failed', 'stopped')),
    node_id        uuid REFERENCES nodes (id),
    attempt        integer NOT NULL DEFAULT 0,
    restarts       integer NOT NULL DEFAULT 0,
    container_id   text NOT NULL DEFAULT '',
    exit_code      integer,
    error          text NOT NULL DEFAULT '',
    reason         text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    scheduled_at   timestamptz,
    started_at     timestamptz,
    finished_at    timestamptz,
    -- a placed task always names its node; a pending one never does
    CHECK ((state IN ('scheduled', 'starting', 'running')) = (node_id IS NOT NULL) OR state IN ('completed', 'failed', 'stopped'))
);

-- The hot paths only ever look at live tasks; partial indexes keep terminal
-- history, however large, out of them.
CREATE INDEX tasks_pending_idx ON tasks (created_at) WHERE state = 'pending';
CREATE INDEX tasks_node_live_idx ON tasks (node_id, state) WHERE state IN ('scheduled', 'starting', 'running');
CREATE INDEX tasks_created_idx ON tasks (created_at DESC);

-- task_events: append-only history, one row per state change, written in the
-- same transaction as the change itself.
CREATE TABLE task_events (
    id        bigserial PRIMARY KEY,
    task_id   uuid NOT NULL REFERENCES tasks (id),
    at        timestamptz NOT NULL DEFAULT now(),
    from_state text,
    to_state  text NOT NULL,
    attempt   integer NOT NULL,
    node_id   uuid,
    exit_code integer,
    reason    text NOT NULL DEFAULT ''
);
CREATE INDEX task_events_task_idx ON task_events (task_id, id);

-- +goose Down
DROP TABLE task_events;
DROP TABLE tasks;
DROP TABLE nodes;
