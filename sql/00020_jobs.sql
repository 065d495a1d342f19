-- +goose Up
-- Jobs: groups of tasks kept as their spec says (see package coordinator,
-- "Jobs"). Every job, version, deployment and periodic launch is a row;
-- any coordinator reconciles any job, one transaction per job holding its
-- row (FOR NO KEY UPDATE SKIP LOCKED), so several replicas share the work
-- without a leader. Agents know nothing of jobs: they have no privileges on
-- these tables, and a job's tasks are ordinary tasks to them.

-- jobs: one row per job. version is the version it should run;
-- eval_at is when a coordinator should next reconcile it: now when a user
-- changed it, else the time the last reconciliation asked for (a health
-- timer, a deadline, the next tick, a fallback); changes of its tasks make
-- it due through job_changes (below).
CREATE TABLE jobs (
    id             uuid PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    type           text NOT NULL CHECK (type IN ('service', 'batch', 'system', 'periodic')),
    parent_id      uuid REFERENCES jobs (id) ON DELETE CASCADE,
    version        integer NOT NULL CHECK (version >= 1),
    stable_version integer,
    status         text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete', 'failed', 'stopped')),
    status_reason  text NOT NULL DEFAULT '',
    stopped        boolean NOT NULL DEFAULT false,
    purge          boolean NOT NULL DEFAULT false,
    eval_at        timestamptz NOT NULL DEFAULT now(),
    last_tick      timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_eval_idx ON jobs (eval_at);
CREATE INDEX jobs_parent_idx ON jobs (parent_id, created_at) WHERE parent_id IS NOT NULL;

-- job_versions: every spec a job was given, never changed. spec holds no
-- secret values: they are in sealed_secrets, sealed with the cluster key
-- for secrets_id. template_key identifies what the version's tasks run
-- (with generation, bumped by a restart or a changed secret): tasks of
-- versions with equal keys move between them in place.
CREATE TABLE job_versions (
    job_id         uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    version        integer NOT NULL,
    spec           jsonb NOT NULL,
    template_key   text NOT NULL,
    generation     integer NOT NULL DEFAULT 0,
    secret_keys    text[] NOT NULL DEFAULT '{}',
    secrets_id     uuid,
    sealed_secrets bytea,
    reason         text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, version)
);

-- deployments: the roll-out of one version of a service.
CREATE TABLE deployments (
    id                   uuid PRIMARY KEY,
    job_id               uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    version              integer NOT NULL,
    state                text NOT NULL CHECK (state IN ('running', 'successful', 'failed', 'cancelled')),
    canaries             integer NOT NULL DEFAULT 0,
    promoted             boolean NOT NULL DEFAULT false,
    desired              integer NOT NULL DEFAULT 0,
    placed               integer NOT NULL DEFAULT 0,
    healthy              integer NOT NULL DEFAULT 0,
    unhealthy            integer NOT NULL DEFAULT 0,
    reason               text NOT NULL DEFAULT '',
    started_at           timestamptz NOT NULL DEFAULT now(),
    progress_deadline_at timestamptz,
    ended_at             timestamptz,
    UNIQUE (job_id, version)
);

-- periodic_launches: one row per tick of a periodic job. The row is the
-- launch: whichever coordinator inserts it (ON CONFLICT DO NOTHING) starts
-- the instance, so a tick launches once whatever the number of replicas.
-- skipped says why a tick started nothing (prohibit_overlap).
CREATE TABLE periodic_launches (
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    tick        timestamptz NOT NULL,
    launched_at timestamptz NOT NULL DEFAULT now(),
    child_id    uuid REFERENCES jobs (id) ON DELETE SET NULL,
    skipped     text NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, tick)
);

-- A job's tasks name it, their version and their index (JOB.index). Names
-- of job tasks are shared across versions during a rolling update, so they
-- carry no uniqueness. host_ports are the host ports the engine chose for
-- the ports a task publishes without one, as its agent recorded them for
-- attempt host_ports_attempt.
ALTER TABLE tasks
    ADD COLUMN job_id             uuid REFERENCES jobs (id),
    ADD COLUMN job_version        integer,
    ADD COLUMN job_index          integer,
    ADD COLUMN host_ports         jsonb,
    ADD COLUMN host_ports_attempt integer;
CREATE INDEX tasks_job_idx ON tasks (job_id, job_index) WHERE job_id IS NOT NULL;

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        GRANT UPDATE (host_ports, host_ports_attempt) ON tasks TO orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd

-- job_changes counts the changes of a job's tasks (and, for system jobs,
-- of the nodes) that its reconciliation must look at: a job whose seq is
-- past the evaluated_seq its last reconciliation read is due at once. The
-- count lives apart from the job's row so that the agents' and the
-- sweeper's writes, which bump it, never wait for a reconciliation that
-- holds the job's row (and may be waiting for theirs): no deadlock, and no
-- change is lost, since a reconciliation reads seq before the tasks.
CREATE TABLE job_changes (
    job_id uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    seq    bigint NOT NULL DEFAULT 0
);
ALTER TABLE jobs ADD COLUMN evaluated_seq bigint NOT NULL DEFAULT 0;

-- A job is due as soon as one of its tasks starts running, ends, or
-- changes health. The function runs as its owner: an agent's role, which
-- makes most of these changes, has no privileges on job tables.
-- +goose StatementBegin
CREATE FUNCTION orch_job_task_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE job_changes SET seq = seq + 1 WHERE job_id = NEW.job_id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER tasks_job_changed AFTER UPDATE OF state, health ON tasks FOR EACH ROW
    WHEN (NEW.job_id IS NOT NULL AND (
        (OLD.state IS DISTINCT FROM NEW.state AND NEW.state IN ('running', 'completed', 'failed', 'stopped'))
        OR OLD.health IS DISTINCT FROM NEW.health))
    EXECUTE FUNCTION orch_job_task_changed();

-- System jobs are due as soon as a node joins, comes or goes, is cordoned
-- or relabelled.
-- +goose StatementBegin
CREATE FUNCTION orch_nodes_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE job_changes c SET seq = c.seq + 1 FROM jobs j
    WHERE j.id = c.job_id AND j.type = 'system' AND NOT j.stopped;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER nodes_job_joined AFTER INSERT ON nodes FOR EACH ROW EXECUTE FUNCTION orch_nodes_changed();
CREATE TRIGGER nodes_job_changed AFTER UPDATE OF state, cordoned, labels, draining ON nodes FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.cordoned IS DISTINCT FROM NEW.cordoned
          OR OLD.labels IS DISTINCT FROM NEW.labels OR OLD.draining IS DISTINCT FROM NEW.draining)
    EXECUTE FUNCTION orch_nodes_changed();
REVOKE EXECUTE ON FUNCTION orch_job_task_changed() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION orch_nodes_changed() FROM PUBLIC;

-- report_job_endpoints: where the running copies of every job are, one row
-- per task and published port (a task without ports has one row with NULL
-- ports), for a load balancer or a script. health is the task's health
-- check state ('' without a check); healthy says whether to send it
-- traffic: running, not being stopped, and its check passing (or it has
-- none). host_port is the port published on the node: the spec's, or the
-- one the engine chose (NULL until the agent has recorded it).
CREATE VIEW report_job_endpoints AS
SELECT j.name AS job, t.job_version AS version, t.id AS task_id, t.name AS task,
       n.name AS node, n.address AS node_address,
       COALESCE(NULLIF((p.port->>'host_port')::int, 0),
                (SELECT (h->>'host_port')::int FROM jsonb_array_elements(t.host_ports) h
                 WHERE t.host_ports_attempt = t.attempt
                   AND (h->>'container_port')::int = (p.port->>'container_port')::int
                   AND COALESCE(h->>'protocol', 'tcp') = COALESCE(p.port->>'protocol', 'tcp')
                 LIMIT 1)) AS host_port,
       (p.port->>'container_port')::int AS container_port,
       COALESCE(p.port->>'protocol', 'tcp') AS protocol,
       t.health,
       (t.desired_state = 'running' AND (t.health = 'healthy' OR t.health_check IS NULL)) AS healthy
FROM tasks t
JOIN jobs j ON j.id = t.job_id
JOIN nodes n ON n.id = t.node_id
LEFT JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_array_length(t.ports) > 0 THEN t.ports END) AS p(port) ON true
WHERE t.state = 'running' AND t.job_id IS NOT NULL;
COMMENT ON VIEW report_job_endpoints IS
    'Where the running copies of every job are: one row per task and published port (see package sql). Send traffic to node_address:host_port where healthy.';

-- +goose Down
DROP VIEW report_job_endpoints;
DROP TRIGGER nodes_job_changed ON nodes;
DROP TRIGGER nodes_job_joined ON nodes;
DROP FUNCTION orch_nodes_changed();
DROP TRIGGER tasks_job_changed ON tasks;
DROP FUNCTION orch_job_task_changed();
DROP TABLE job_changes;
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'orch_agent') THEN
        REVOKE UPDATE (host_ports, host_ports_attempt) ON tasks FROM orch_agent;
    END IF;
END
$$;
-- +goose StatementEnd
DROP INDEX tasks_job_idx;
ALTER TABLE tasks DROP COLUMN host_ports_attempt, DROP COLUMN host_ports, DROP COLUMN job_index,
    DROP COLUMN job_version, DROP COLUMN job_id;
DROP TABLE periodic_launches;
DROP TABLE deployments;
DROP TABLE job_versions;
DROP TABLE jobs;
