-- +goose Up
-- A task's short id, the last twelve hex digits of its id, is what the
-- status page prints and what users copy: orch task get 8c25c44b1018 finds
-- the task through this index instead of reading every task's id (half a
-- second with 100,000 tasks).
CREATE INDEX tasks_short_id_idx ON tasks (right(id::text, 12));

-- +goose Down
DROP INDEX tasks_short_id_idx;
