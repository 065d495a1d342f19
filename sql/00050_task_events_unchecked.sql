-- +goose Up
-- Every row of task_events is written by the statement that changes the task
-- it describes (a CTE beside the UPDATE or INSERT of that task), and tasks
-- are deleted only together with their events (retention, purges). The
-- foreign key therefore never refused anything, yet its check ran a query
-- per event, five per task lifecycle: about 35 µs each against 8 µs for the
-- insert itself, measured on this project's 2-core machine. The drain shape
-- of `orch bench` pays it on every transition.
ALTER TABLE task_events DROP CONSTRAINT task_events_task_id_fkey;

-- +goose Down
ALTER TABLE task_events ADD CONSTRAINT task_events_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasks (id);
