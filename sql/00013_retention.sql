-- +goose Up
-- Tables that no longer only grow.
--
-- Finished tasks, with their events, logs, usage and totals, are deleted by
-- the coordinators once they are older than the retention (--retention,
-- 7 days by default), in small batches that never touch a live task. The
-- index serves that and the count of finished tasks by state.
CREATE INDEX tasks_finished_idx ON tasks (state, finished_at) WHERE state IN ('completed', 'failed', 'stopped');

-- Stats history is pruned by the database's clock, for every node, also
-- those that stopped reporting.
CREATE INDEX node_stats_at_idx ON node_stats (at);
CREATE INDEX task_stats_at_idx ON task_stats (at);

-- task_counts keeps how many finished tasks there are in each state, so
-- that /metrics does not count a million rows on every scrape of every
-- replica. It holds the counts of the tasks that finished up to
-- counted_until; a scrape adds those that finished since (a short range of
-- tasks_finished_idx) and the live ones (their partial indexes), so the
-- figures are exact. A coordinator moves counted_until forward every few
-- seconds, adding what finished in between, and retention subtracts what it
-- deletes; both hold the row's lock while they count. counted_until stays
-- half a minute behind the clock: no transaction lasts that long, so no task
-- can commit a finished_at below it after it was counted.
CREATE TABLE task_counts (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    completed     bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    stopped       bigint NOT NULL DEFAULT 0,
    counted_until timestamptz NOT NULL DEFAULT '-infinity',
    counted_at    timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO task_counts DEFAULT VALUES;

-- Restarts waiting out their backoff are queued at its end
-- (transitionSQL); those already waiting move there now. An agent that
-- restarts a task writes it.
UPDATE tasks SET queued_at = not_before WHERE state = 'pending' AND not_before > queued_at;
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        GRANT UPDATE (queued_at) ON tasks TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd

-- Tasks a user asked to stop that went back to the queue (their node was
-- lost or drained) sat there forever: no pass takes them. They end stopped.
WITH stuck AS (
    UPDATE tasks SET state = 'stopped', finished_at = now(), reason = '', updated_at = now()
    WHERE state = 'pending' AND desired_state = 'stopped'
    RETURNING id, attempt
)
INSERT INTO task_events (task_id, from_state, to_state, attempt, reason)
SELECT id, 'pending', 'stopped', attempt, 'stopped on request (it had been sent back to the queue)' FROM stuck;

-- +goose Down
DROP TABLE task_counts;
DROP INDEX task_stats_at_idx;
DROP INDEX node_stats_at_idx;
DROP INDEX tasks_finished_idx;
