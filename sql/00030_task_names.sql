-- +goose Up
-- Task names work like Docker's container names: one live task (pending,
-- scheduled, starting or running) per name among the tasks created on their
-- own, while finished tasks keep theirs for history (a name then means the
-- newest). A job's tasks are named JOB.N and, during a rolling update, an
-- old and a new one share a name for a while: the rule leaves them out.
--
-- Clusters from before the rule may have live duplicates: all but the
-- newest get their short id appended, so that the index can be built.
UPDATE tasks t SET name = left(t.name, 115) || '-' || right(t.id::text, 12), updated_at = now()
WHERE t.job_id IS NULL AND t.state IN ('pending', 'scheduled', 'starting', 'running')
  AND EXISTS (SELECT 1 FROM tasks o
              WHERE o.name = t.name AND o.job_id IS NULL AND o.state IN ('pending', 'scheduled', 'starting', 'running')
                AND (o.created_at, o.id) > (t.created_at, t.id));
CREATE UNIQUE INDEX tasks_live_name_key ON tasks (name)
    WHERE job_id IS NULL AND state IN ('pending', 'scheduled', 'starting', 'running');
-- Looking a task up by name (orch task get web) finds the newest of that name.
CREATE INDEX tasks_name_idx ON tasks (name, created_at DESC);

-- +goose Down
DROP INDEX tasks_name_idx;
DROP INDEX tasks_live_name_key;
