// Package queue holds orch's domain types — tasks and their states, nodes,
// resources, constraints, health checks, events, jobs — and the rules about
// them that need no database: validation, state transitions, restart
// policies, the job spec and its cron schedules. Package queue/postgres
// stores them; every other package speaks in these types.
//
// # Jobs
//
// A job is a group of tasks kept as its spec says. orch job run FILE reads
// the spec as YAML or JSON (POST /jobs takes the same as JSON), and one
// validator, [ParseJobSpec], checks it for both: an unknown field, a wrong
// type or a bad value is refused naming the field by its path
// ("task.resources.memory: unknown unit "XB""), with HTTP 400 or exit
// code 2, and nothing is stored. Running a changed spec makes a new version
// of the job (orch job history shows what changed); an unchanged one
// changes nothing. orch job plan FILE shows what a run would do, changing
// nothing.
//
// The fields, with their defaults:
//
//   - name: letters, digits, '_', '.', '-'; a job's tasks are named NAME.0,
//     NAME.1, ...
//   - type: service (the default), batch, system or periodic.
//   - count: how many tasks a service keeps running, or a batch job (and
//     each instance of a periodic one) runs to completion (default 1;
//     0..10000). A system job runs one task per eligible node instead.
//   - datacenters: the job runs only on nodes whose dc label (orch agent
//     --datacenter, default dc1) is one of these; any when empty.
//   - constraints and strategy: as for orch task create ("zone=eu",
//     "gpu!=none" or {key, op, value}; spread or binpack).
//   - task: the template of every task, with what orch task create takes:
//     image (required), command, env, secrets (sealed, never shown), labels,
//     resources (cpu as cores or millicores: 0.5, 500m; memory and disk with
//     a unit: 256MiB, 1G), ports ({container_port, host_port, protocol};
//     without host_port the engine chooses one, found in
//     report_job_endpoints), health_check ({type: http or tcp, port, path,
//     interval, timeout, failure_threshold, start_period}), restart_policy
//     (never, on-failure, always) and max_restarts — always and no limit
//     for services and system jobs, on-failure and 3 for batch and periodic
//     ones — privileged, network, stop_after_disconnect, pids_limit.
//   - update: how a service (or system job) moves to a new version:
//     max_parallel (1) tasks replaced at a time; a new task counts as
//     healthy once its health check has passed, or without one once it has
//     run, for min_healthy_time (10s), and an old task stops only when its
//     replacement is healthy, so no fewer than count − max_parallel healthy
//     tasks remain; healthy_deadline (5m) for each new task and
//     progress_deadline (10m) for the deployment to make progress, after
//     which it fails; auto_revert (false) then runs the last version whose
//     deployment succeeded again, as a new version; canary (0) starts that
//     many new tasks beside the old ones and waits for orch job promote.
//   - periodic (periodic jobs only): cron, a standard five-field expression,
//     six with seconds first, or a descriptor (@hourly, @daily, @every 30s);
//     time_zone (UTC), an IANA zone it is read in; prohibit_overlap (false)
//     skips a tick while the previous instance still runs.
//
// A service keeps count tasks of its current version running: a task that
// fails or is lost with its node is replaced (on another node when its node
// is gone), with a backoff; a new version rolls out as a deployment.
//
//	name: web
//	type: service
//	count: 3
//	datacenters: [dc1, dc2]
//	strategy: spread
//	task:
//	  image: nginx:1.27
//	  env: {MODE: prod}
//	  resources: {cpu: 250m, memory: 128MiB}
//	  ports: [{container_port: 80}]
//	  health_check: {type: http, port: 80, path: /, interval: 2s}
//	update:
//	  max_parallel: 1
//	  min_healthy_time: 10s
//	  progress_deadline: 5m
//	  auto_revert: true
//	  canary: 1
//
// A batch job runs count tasks to completion, each failure retried as its
// restart policy says; the job ends complete when every task has
// completed, or failed when one has failed past its max_restarts.
//
//	name: resize-images
//	type: batch
//	count: 20
//	task:
//	  image: registry.example.com/resize:2.1
//	  command: [resize, --all]
//	  resources: {cpu: 1, memory: 512MiB}
//	  max_restarts: 1
//
// A system job runs one task on every eligible node — in the job's
// datacenters, matching its constraints, ready, neither cordoned nor
// draining — each pinned to its node. A node that joins gets its task
// within a few seconds; the task of a node that leaves is not placed
// elsewhere; a cordoned node keeps the task it has and gets no new one.
//
//	name: node-exporter
//	type: system
//	constraints: ["role!=db"]
//	task:
//	  image: prom/node-exporter:v1.8.2
//	  resources: {cpu: 100m, memory: 64MiB}
//	  ports: [{container_port: 9100, host_port: 9100}]
//
// A periodic job launches, on every tick of its schedule, an instance: a
// batch job named NAME.periodic-UNIXTIME of its spec. A tick launches once
// whatever the number of coordinators (its periodic_launches row is the
// launch); after an outage only the latest missed tick is launched.
//
//	name: nightly-report
//	type: periodic
//	periodic:
//	  cron: "0 30 2 * * *"
//	  time_zone: Europe/Berlin
//	  prohibit_overlap: true
//	task:
//	  image: registry.example.com/report:1.4
//	  command: [report, --yesterday]
//	  resources: {cpu: 500m, memory: 256MiB}
//
// How the coordinators reconcile jobs is described in package coordinator
// (Jobs); the decisions themselves, pure, in scheduler.Reconcile.
package queue
