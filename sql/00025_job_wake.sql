-- +goose Up
-- Waking the coordinators' job loops. A job that becomes due is announced
-- on orch_jobs (empty payload: the loops read which jobs are due), sent by
-- the statement that makes it due, so a rolling update's next step does
-- not wait for the loops' next poll; the poll stays as the fallback.
--
-- A notifying commit holds a database-wide lock through its WAL flush, and
-- wakes every listening backend (package queue/postgres), so a task's
-- change notifies only when it makes its job due: when the job had been
-- reconciled since its previous change (seq was not past evaluated_seq).
-- Later changes of a job already due say nothing: a notification for it
-- was sent, or a loop is looking at it. One gap is closed by the
-- coordinator: a change that commits while a reconciliation which did not
-- see it is committing finds the job due by the old evaluated_seq and
-- stays quiet; so after each reconciliation the coordinator waits for the
-- changes of its job in flight (FOR SHARE on its job_changes row, see
-- Store.ReconcileJob) before it looks for due jobs again.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_job_task_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    s bigint;
BEGIN
    UPDATE job_changes SET seq = seq + 1 WHERE job_id = NEW.job_id RETURNING seq INTO s;
    IF s - 1 <= (SELECT evaluated_seq FROM jobs WHERE id = NEW.job_id) THEN
        PERFORM pg_notify('orch_jobs', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- A node's change (rare) notifies when there is a system job to look at.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_nodes_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE job_changes c SET seq = c.seq + 1 FROM jobs j
    WHERE j.id = c.job_id AND j.type = 'system' AND NOT j.stopped;
    IF FOUND THEN
        PERFORM pg_notify('orch_jobs', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- A job made due by a user (run, scale, stop, promote, restart, revert) or
-- created by a periodic launch: its eval_at is set to now.
-- +goose StatementBegin
CREATE FUNCTION orch_job_due() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orch_jobs', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER jobs_due AFTER INSERT OR UPDATE OF eval_at ON jobs FOR EACH ROW
    WHEN (NEW.eval_at <= now()) EXECUTE FUNCTION orch_job_due();
REVOKE EXECUTE ON FUNCTION orch_job_due() FROM PUBLIC;

-- +goose Down
DROP TRIGGER jobs_due ON jobs;
DROP FUNCTION orch_job_due();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_nodes_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE job_changes c SET seq = c.seq + 1 FROM jobs j
    WHERE j.id = c.job_id AND j.type = 'system' AND NOT j.stopped;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION orch_job_task_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE job_changes SET seq = seq + 1 WHERE job_id = NEW.job_id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
