-- +goose Up
-- Every change of a task (placed, claimed, running, exited) is a new row
-- version that is not a HOT update (its state is in the predicates of partial
-- indexes), so it inserts an entry into every index whose predicate the new
-- version meets. The two name indexes took one on every change of every task,
-- although a task created without a name is named task-<its short id>: its
-- name is found through tasks_short_id_idx, and being made of the task's own
-- id it can only clash with a name a user gave on purpose (createTasks checks
-- those). They now leave such tasks out, and tasks_name_idx also leaves out
-- the live tasks that tasks_live_name_key holds, so that a named task enters
-- it once, when it finishes, instead of on every change. ResolveTask reads
-- the three (queue/postgres, refs.go).
DROP INDEX tasks_live_name_key;
CREATE UNIQUE INDEX tasks_live_name_key ON tasks (name)
    WHERE job_id IS NULL AND state IN ('pending', 'scheduled', 'starting', 'running')
      AND name <> 'task-' || right(id::text, 12);
DROP INDEX tasks_name_idx;
CREATE INDEX tasks_name_idx ON tasks (name, created_at DESC)
    WHERE name <> 'task-' || right(id::text, 12)
      AND (job_id IS NOT NULL OR state IN ('completed', 'failed', 'stopped'));

-- +goose Down
DROP INDEX tasks_name_idx;
CREATE INDEX tasks_name_idx ON tasks (name, created_at DESC);
DROP INDEX tasks_live_name_key;
CREATE UNIQUE INDEX tasks_live_name_key ON tasks (name)
    WHERE job_id IS NULL AND state IN ('pending', 'scheduled', 'starting', 'running');
