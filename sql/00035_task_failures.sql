-- +goose Up
-- report_task_failures: one row per task that failed for good (state
-- failed), with why: the exit code (NULL when no container ran, e.g. an
-- image that does not exist), the error the agent or engine reported, and
-- the reason its history gives for the end ("exited with code 3", "health
-- check failed: ...", or the start error), the node it failed on, and when.
-- A task its restart policy brings back is not here until it fails for
-- good; restarts counts the attempts before. Like the other report_ views
-- it is a public interface (package sql) and runs as its owner, so a
-- reporting role needs only SELECT on it.
CREATE VIEW report_task_failures AS
SELECT t.id AS task_id, t.name AS task, t.image, j.name AS job,
       n.name AS node, t.attempt, t.restarts,
       COALESCE(e.exit_code, t.exit_code) AS exit_code,
       t.error,
       COALESCE(NULLIF(e.reason, ''), t.error) AS reason,
       COALESCE(t.finished_at, e.at) AS failed_at
FROM tasks t
LEFT JOIN LATERAL (
    SELECT ev.at, ev.node_id, ev.exit_code, ev.reason FROM task_events ev
    WHERE ev.task_id = t.id AND ev.to_state = 'failed' ORDER BY ev.id DESC LIMIT 1
) e ON true
LEFT JOIN nodes n ON n.id = COALESCE(e.node_id, t.node_id)
LEFT JOIN jobs j ON j.id = t.job_id
WHERE t.state = 'failed';
COMMENT ON VIEW report_task_failures IS
    'Tasks that failed for good, with exit code, error, reason, node and time (see package sql).';

-- +goose Down
DROP VIEW report_task_failures;
