-- +goose Up
-- Placement: per-task strategy and label constraints, host-port accounting,
-- the shared round-robin cursor, and a pending queue that rotates tasks which
-- fit nowhere to the back.

-- strategy: '' means the coordinator's default. constraints: a JSON array of
-- {"key", "op" ("=" or "!="), "value"}.
ALTER TABLE tasks
    ADD COLUMN strategy    text  NOT NULL DEFAULT '',
    ADD COLUMN constraints jsonb NOT NULL DEFAULT '[]',
    -- queued_at is a pending task's place in the scheduling queue: its
    -- creation, moved to now() each time a pass finds no node for it, so a
    -- batch of tasks that fit nowhere cannot keep the tasks behind them
    -- from ever being considered.
    ADD COLUMN queued_at   timestamptz NOT NULL DEFAULT now();

CREATE INDEX tasks_pending_queue_idx ON tasks (queued_at, id) WHERE state = 'pending';

-- node_ports: the host ports held on each node, one row per published port
-- of a placed, live task. The primary key is what makes a port impossible to
-- hand out twice on one node, however many coordinators race: rows are
-- inserted by the same statement that places the task (while the pass holds
-- the node's row lock, so its check of this table is current), and deleted
-- by the same statement that moves the task out of its live states
-- (transitionSQL), exactly like the reserved_* counters on nodes.
CREATE TABLE node_ports (
    node_id   uuid    NOT NULL REFERENCES nodes (id),
    protocol  text    NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    host_port integer NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
    task_id   uuid    NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (node_id, protocol, host_port)
);
CREATE INDEX node_ports_task_idx ON node_ports (task_id);

-- scheduler_cursor: where the round-robin walk over the nodes (in id order)
-- stopped, so that every coordinator replica continues the same walk. A pass
-- that places round-robin tasks locks the row for its duration and moves it
-- in the same transaction as its placements.
CREATE TABLE scheduler_cursor (
    name    text PRIMARY KEY,
    node_id uuid
);
INSERT INTO scheduler_cursor (name) VALUES ('round-robin');

-- +goose Down
DROP TABLE scheduler_cursor;
DROP TABLE node_ports;
DROP INDEX tasks_pending_queue_idx;
ALTER TABLE tasks DROP COLUMN queued_at, DROP COLUMN constraints, DROP COLUMN strategy;
