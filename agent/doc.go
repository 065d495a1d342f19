// Package agent runs on every machine: it registers its node, heartbeats,
// pulls the tasks placed on it from Postgres, runs them as containers and
// writes back what happened. It opens no port; it only dials the database.
//
// The container runtime is behind [Runtime]: [DockerRuntime] talks to the
// Docker Engine API, [MemRuntime] simulates containers for the benchmark and
// the tests (orch agent --runtime memory: nothing runs; a task's "-sleep D"
// and "-exit N" arguments are honoured as the test workload honours them).
//
// This comment explains what the agent does, and above all what it does when
// something fails. The coordinator's side of the same failures (the sweeper,
// lost nodes, the heartbeat policy) is described in package coordinator; the
// SQL that fences every agent write, in package queue/postgres.
//
// # The promise
//
// A task the API accepted is never lost, never runs on two nodes once the
// fencing window has passed, and is running (or has ended) within the
// node-down timeout + 10 s of any single failure (for up to 100 nodes; larger
// clusters beat less often and allow a longer silence, see Heartbeats).
//
// # Waking up and claiming
//
// An agent LISTENs on its node's channel and claims the tasks placed on its
// node in one statement (FOR UPDATE SKIP LOCKED). The same round trip counts
// the node's scheduled tasks the claim left; if it skipped some that another
// transaction held for a moment (the fenced write of an agent that had just
// woken up and lost them, say), the agent looks again after --poll-interval
// instead of waiting for a notification that is already spent. While its
// LISTEN connection is up (pinged after 30 s of quiet, so that a connection
// that died silently is noticed) it polls only every --idle-poll-interval
// (30 s, with jitter) as a safety net; while it is down, every
// --poll-interval (2 s). It starts at most --parallel-starts containers at
// once (8).
//
// Through a transaction pooler (--database-pooler transaction, for fleets
// of thousands; see package queue/postgres) an agent cannot LISTEN. It
// long-polls the coordinators given with --coordinator instead (one at a
// time, the next when one fails; wake_poll.go): each wait lasts up to 25 s
// and ends early when the node has something to look at, and the agent
// then claims as after a notification. A fresh wait asks for an answer at
// once, so that the agent knows it will be woken and polls rarely from the
// start; while no coordinator answers it polls every --poll-interval. An
// agent behind a pooler that knows no coordinator polls every
// --poll-interval. Why this and not a LISTEN each or polling alone, with
// the figures, is in package queue/postgres.
//
// # Heartbeats
//
// Every agent heartbeats (--heartbeat-interval, default 2 s) and reports its
// container engine's health with each beat. Heartbeats and usage reports
// commit asynchronously: one lost in a crash is replaced by the next, and a
// thousand agents cause a few WAL flushes a second instead of one per write.
//
// Heartbeats scale with the cluster, as Nomad's do: the coordinators keep a
// cluster-wide interval at which all live nodes together beat at most
// --max-heartbeats-per-second (50), and an agent beats at that interval when
// it is longer than its own. Up to 100 nodes nothing changes; 1,000 nodes
// beat every 20 s. The interval grows no further than
// --max-heartbeat-interval (20 s): a node's loss is noticed within its
// interval, half the node-down timeout and a sweep (27 s with the
// defaults), so beyond 1,000 nodes the cluster beats more often than the
// limit, n/20 a second: 500 at 10,000 nodes. What that costs was measured
// rather than copied (Nomad caps at 50 a second): a heartbeat is one HOT
// update of the node's row, committed asynchronously; orch bench's fleet
// phase drives them as fast as 32 clients through PgBouncer can and reports
// the server CPU of one.
//
// On this repository's 2-core machine, shared with other jobs (load
// average 9 to 20), a heartbeat through PgBouncer cost the server about
// 450 µs of CPU as a plain statement, planned anew each time since
// prepared statements do not survive a transaction pooler, and 260–280 µs
// as the function orch_beat, whose plans each server connection keeps
// (00016_beat.sql; on a direct connection either costs about 150 µs). The
// server took 1,600–3,500 beats a second from 32 clients. So 500 beats a
// second, 10,000 nodes every 20 s, cost about 14% of a core on that machine,
// which is why the bound, not a higher rate, is the policy: the limit's 50
// a second stays the default, and keeps a fleet of up to 1,000 nodes as
// cheap as before (1,000 nodes beat every 20 s either way).
// A beat may take up to half the cluster's interval before it is given up
// (at least --heartbeat-interval): through a pooler, a beat abandoned while
// its statement runs costs the pooler its server connection, and under
// load that fed on itself (PostgreSQL forked 14,000 backends in three
// minutes before the deadline was lengthened).
//
// The node's own interval is stored with it
// (nodes.heartbeat_interval_ms) and is what its allowed silence is computed
// from, so a policy that shrinks again takes no node by surprise. A failed
// beat is retried after the agent's own --heartbeat-interval. The agent's
// other periodic work follows the heartbeat: its stats, and its safety-net
// poll and reconcile, which come every three heartbeat intervals when that
// is longer than --stats-interval (10 s), --idle-poll-interval and
// --reconcile-interval (30 s): every minute at 1,000 nodes.
//
// Each beat also returns what the database holds for the node (tasks
// waiting to be claimed, stop requests, a digest of its leases, volumes to
// delete; 00060_beat_digest.sql), read with the beat's cached plans. An
// agent whose wake-ups come and whose beat found nothing it does not know
// of asks the database nothing on its safety net, and reconciles by
// listing its engine's containers alone (a full reconcile, which reads
// the node's tasks, comes every ten reconcile intervals); a beat that
// finds work a wake-up should have announced, or leases other than the
// ones the agent watches, has it step or reconcile at once, so a missed
// wake-up costs at most one heartbeat interval. Its five unprepared
// statements a cycle (planned anew through a pooler) were more of an idle
// fleet's cost to PostgreSQL than its beats (digest.go; the figures are
// printed by orch bench's fleet phase). The metrics
// orch_agent_steps_total, orch_agent_steps_skipped_total and
// orch_agent_reconciles_total show it. An agent with starts or stops under
// way would not compare the leases (its own writes are on their way), so
// its beat asks for them not to be read (00062_beat_leases_when_asked.sql):
// they cost the server a few milliseconds a beat on a node running
// hundreds of tasks.
//
// # Fencing
//
// Every placement bumps the task's attempt; every agent write names its lease
// (node and attempt), and a stale one changes nothing (queue.ErrNotOwner).
// An agent compares the leases it watches with the database at every step
// (on every notification, and every --poll-interval while it has no wake-up
// channel) and with the digest every heartbeat returns, so one that comes back
// after being declared down (it was frozen, or cut off) stops and removes the
// containers of the tasks that were moved away within a step, while they run,
// and keeps what is still its own. Nothing is written about such a task: any
// write would be fenced off anyway. Its heartbeat also tells the agent that
// its node had been declared down, which triggers a full reconcile.
//
// # Self-fencing
//
// Fencing acts when the agent is back. A node that is only cut off from the
// database (a partition, a broken link) keeps running its containers
// meanwhile, and after the node-down timeout the cluster starts their
// replacements elsewhere. A task that must never run twice at once asks its
// agent to stop it once the agent has gone that long without a successful
// heartbeat: orch task create --stop-after-disconnect 3s, or
// "stop_after_disconnect": "3s" in the API; off by default, as Nomad's
// disconnect.stop_on_client_after. The silence is counted from the last
// heartbeat that went through, on the monotonic clock, as soon as a later
// one has been sent and not answered: the fence runs on a timer of its own,
// set for the moment the first such task is due, and does not wait for the
// heartbeat to fail. In a silent partition (packets dropped, not refused) a
// heartbeat only fails at its deadline (the heartbeat interval, at least
// 2 s, or half the cluster's interval when that is longer), and every other database call has one too (see queue/postgres), while
// the connections' TCP keepalives and user timeout end a dead connection
// within about 30 s; the task is stopped at its stop_after_disconnect all the
// same, within one heartbeat interval of the partition (tested with a proxy
// that keeps the connections open and forwards nothing). Between heartbeats
// nothing is asked, so nothing counts: in a cluster that beats every 20 s the
// first check comes with the first beat after the partition. Set below the
// coordinators' --node-down-timeout less the task's stop time, the old
// container is gone before the cluster can have moved the task.
//
// When the database answers again the stop is recorded as a move, not a
// restart ("moved: stopped because its agent lost touch with the database for
// 3.1s (stop_after_disconnect 3s)"), and the task is placed again, unless the
// cluster moved it already. It is the task's choice, not the node's, because
// an agent cannot tell its own partition from an outage of the database: when
// PostgreSQL is away for everyone, tasks that set it stop everywhere too, and
// the rest keep running.
//
// # Restart policies and backoff
//
// A task's policy (--restart-policy never|on-failure|always, --max-restarts
// N, 0: no limit, as in Docker) decides what follows an attempt that ended by
// itself: its container exited, could not start, or failed its health check.
// on-failure restarts after a non-zero exit, a failed start or a failed
// health check; always after any end. A restart goes back through the queue:
// the transaction that records the agent's exit report returns the task to
// pending with not_before set to the end of its backoff (the backoff is the
// agent's setting), so it survives the crash of any process, and the
// scheduler places it anew, often on the same node, whose room was just
// freed, but never on one that is unhealthy, cordoned or down. The backoff is --restart-backoff
// (1 s), doubling per restart up to --restart-backoff-max (1 m), and starting
// over after an attempt that ran for --restart-backoff-reset (10 m), as
// Kubernetes' crash-loop backoff does. Each restart is a new attempt with its
// events:
//
//	running → pending (exited with code 3; restart 2 of 5 (on-failure) in 2s)
//	pending → scheduled   (the next attempt)
//
// orch task get shows the count and, while waiting, the next attempt's time.
// Losing a node is not the task's end: such a task is placed again whatever
// its policy, even never, and it does not count as a restart (see package
// coordinator).
//
// # Out of memory
//
// A task that outgrows its --memory is killed by the kernel and ends failed
// (or restarts under its policy) with "killed: out of memory". The agent does
// not trust the container's OOMKilled flag alone: Docker 20.10 on cgroup v1
// leaves it false when the kernel's OOM event reaches the engine after the
// exit (seen in about one OOM kill in ten on a loaded machine, 0.2–0.9 s
// late). The agent also follows the engine's oom events for its containers,
// and for a SIGKILL exit (137) that orch did not send it waits up to 3 s
// after the exit for one. What remains is an engine limit: a process killed
// within milliseconds of its start can lose the event entirely (containerd has
// not yet registered its notifier), and ends with exit code 137 and no reason.
//
// # Unhealthy nodes
//
// A node whose engine does not answer (its ping fails, or a start fails and
// the ping then fails), or on which 3 image pulls in a row failed (for 30 s
// after the last), is unhealthy: the scheduler gives it no new work, so tasks
// go elsewhere instead of restarting in place forever. A task whose start
// failed because the engine was down is handed back to the queue (not a
// failure, not a restart). If the engine stays silent for longer than the
// node-down timeout, the node's tasks are moved; failing pulls alone leave
// running tasks alone. When the engine answers again the node is ready and
// the agent reconciles.
//
// # Agent restarts and adoption
//
// An agent that restarts (even after kill -9) re-adopts its running
// containers by their labels: no orphan, no duplicate. Its reconcile, at
// start, when it learns its node was declared down, when its engine comes
// back, when a heartbeat's digest shows leases it does not watch, and
// every --reconcile-interval (30 s) unless the last heartbeat and the
// engine's list agree with what it watches (then every ten intervals),
// matches the tasks the database says the node holds against the
// containers labelled with the node, and
//
//   - adopts its own (the same task and attempt) that it is not watching yet;
//   - records the exits that happened while it was not watching, with their
//     exit codes (and the restart policy applies);
//   - resumes claims it had not got to;
//   - removes the orch containers that are no longer its own: their task
//     ended, or was moved to another node while the agent was away.
//
// A container without orch's labels is never touched. Several agents may
// share one engine: each only ever looks at containers labelled with its own
// node id.
//
// # Drain
//
// orch node drain NODE cordons the node and sends its unclaimed tasks back to
// the queue at once (package coordinator). The node's agent then claims
// nothing new, stops every container it watches with its --stop-grace (10 s)
// and records each exit as a move: the task goes back to pending and runs on
// another node as a new attempt, not a restart. Tasks still starting are
// handed over once they run. What is left at the deadline (the agent is gone,
// say) is moved by the sweeper.
//
// # Health checks
//
// A task may declare a probe: --health-http 8080/healthz (HTTP GET, healthy on
// 2xx/3xx) or --health-tcp 9000 (a TCP connect), with --health-interval
// (10 s), --health-timeout (1 s), --health-failures (3) and
// --health-start-period (0), or in the API:
//
//	"health_check": {"type": "http", "port": 8080, "path": "/healthz", "interval": "10s",
//	                 "timeout": "1s", "failure_threshold": 3, "start_period": "30s"}
//
// The agent probes from its own side, at the container's address on the
// node's bridge network, so nothing needs to be published or to reach the
// node. After failure_threshold failures in a row the container is stopped
// and the attempt counts as failed: the task is restarted (through the queue)
// or ends failed, per its policy. orch task get shows the check and the
// health (starting, healthy, or unhealthy with the last probe's outcome).
//
// # Containers: names, labels, limits
//
// A container is named orch-NAME-SHORTID-ATTEMPT (orch-SHORTID-ATTEMPT for a
// task with the default name), readable in docker ps and unique per attempt.
// Its labels carry ownership: orch.task, orch.node, orch.attempt (and
// orch.name). The image is pulled only when the engine does not have it, so a
// locally built image needs no registry. The task's command becomes the
// container's arguments (Docker's Cmd; the image's entrypoint is kept). CPU is
// limited as NanoCPUs, memory in bytes with no swap on top (so a task that
// outgrows it is OOM-killed instead of swapping). Disk (--disk) is a
// scheduling figure only: it is reserved on the node so that placement does
// not overcommit a node's disk, but the container's writes are not limited
// by it (the engine can enforce a size only on a few storage drivers, such as
// overlay2 on XFS with project quotas; orch does not claim what most engines
// cannot do).
//
// Every task container is also limited so that one task cannot take its
// node down: a process limit (agent --pids-limit, 2048 by default, threads
// included; a task may ask for fewer with --pids-limit, never for more), so
// a fork bomb stops at it; no-new-privileges for every unprivileged
// container, so that setuid programs inside gain nothing; and, where the
// engine keeps logs in files of its own (the json-file and local drivers),
// those files are bounded (--container-log-max-size 10MiB,
// --container-log-max-files 3): the agent ships the output to the database,
// and the engine's copy would otherwise grow until the disk is full. Another
// log driver is the operator's choice and left alone.
//
// A task's secrets (--secret K=V, --secret-file K=PATH) are opened by the
// agent of the node it is placed on, just before the container starts, with
// the cluster's key (--secrets-key-file, the coordinators' key), and given to
// the container as environment variables. An agent without the key fails
// such a task, saying so; the values are in no event, log line or error.
//
// A privileged container, or one on the host's network, runs only when an
// admin-scoped request asked for it and the agent was started with
// --allow-privileged (such agents label their node
// orch.allow-privileged=true, and the scheduler places those tasks only
// there). An agent only ever stops or removes containers that carry its
// node's label, and checks a container id read from the database for the
// label first.
//
// Named volumes are made before the container, with the labels orch.volume
// (the name) and orch.node; an agent removes only volumes with its label,
// when a user deleted one (woken with "volumes", and at every full
// reconcile), and then also reports the volumes of its node that the
// database has no row for (one restored from an older backup). Host paths are bound only by an agent started with
// --allow-host-mounts (its node is labelled orch.allow-host-mounts=true,
// and only admins may submit such tasks), and only below
// --host-mount-prefix; anything else fails the task's start, saying why.
//
// Images are pulled only when missing; then the agent reads the login of
// the image's registry, if orch has one (orch registry login), and opens it
// with the cluster's key.
//
// # Stats
//
// Every --stats-interval (10 s; in a cluster large enough that heartbeats are
// less frequent, at the heartbeat interval instead) the agent measures its
// machine with goprocinfo (CPU busy share of all cores, load average, memory
// used of total, disk used of total for /) and each running container through
// the Docker stats API (CPU in percent of one core, as docker stats shows it,
// and memory without the page cache). The latest figures go on the node row
// and into task_usage; the history into node_stats and task_stats, from which
// each write deletes that node's rows older than --stats-retention (24 h).
// The machine's figures are not a write of their own: the next heartbeat
// carries them, in its one call (orch_beat, 00017_beat_usage.sql), so that
// an idle agent costs the database one statement per interval instead of
// two (at the cluster's longest interval the stats come as often as the
// beats, and were half of an idle fleet's server CPU through the pooler).
// They reach the database up to one heartbeat interval after they were
// measured; heartbeats come at least as often as samples, so none is
// skipped. The tasks' figures, only when containers run, are written apart.
// Samples are stamped with the database's clock, not the agent's, since the
// history is pruned and compared by the database's. Likewise the agent reads
// the database's clock with every heartbeat, and compares a time the
// database stamped (a task's start, for a health check's start period) with
// its own clock only through that.
//
// # Logs
//
// The agent follows each container's stdout and stderr through the Docker API
// (with timestamps, demultiplexed with stdcopy) in its own goroutine, started
// after the task is recorded running, so shipping never delays a start. Lines
// go into task_logs in batches (up to 500 lines or 200 ms). Each task keeps
// at most --log-max-lines (10000) lines and --log-max-bytes (1MiB); beyond
// that the oldest lines are deleted and counted in
// task_log_totals.dropped_lines. When a container exits the agent ships its
// last lines before it records the exit (bounded by 5 s), so a reader that
// sees the task ended has all of its output; only then is the container
// removed. A restarted agent resumes after the last line it stored. Lines are
// fenced like every agent write: only the node that holds the task's attempt
// may add to it.
//
// # Metrics
//
// An agent serves Prometheus metrics only when started with
// --metrics-listen ADDR (GET /metrics; it opens no port otherwise), through
// the Prometheus Go client with its Go runtime and process collectors
// (go_goroutines, process_resident_memory_bytes, ...) beside orch's own:
//
//	orch_agent_claims_total                    tasks claimed
//	orch_agent_container_starts_total          containers started
//	orch_agent_container_start_failures_total  containers that failed to start
//	orch_agent_container_exits_total{state}    exits recorded, by the state the task ended in
//	orch_agent_errors_total{op}                failed database writes, by operation
//	orch_agent_log_lines_shipped_total         log lines shipped
//	orch_agent_log_lines_dropped_total         log lines the per-task cap dropped
//	orch_agent_stats_reports_total             node and task stats written
//	orch_agent_containers_watched              containers watched now (gauge)
//
// # Memory
//
// The agent runs beside the workloads on every machine, so it is kept small
// (the target is a peak RSS of at most 30 MB holding 250 containers; orch
// bench measures it). Most of its RSS is pages of the orch executable itself,
// shared through the page cache with every other orch process; its own
// memory is a live heap of a few kilobytes per container plus goroutine
// stacks. Three choices keep it there: a log shipper does not keep a batch
// buffer on its stack; a container's exit wait and log follower run on
// goroutines started after the database calls before them, so their stacks
// stay small instead of growing deep in the database driver; and orch agent
// collects at GOGC=50 unless GOGC is set, since its heap is so small that the
// collector's default room would be a tenth of its RSS.
//
// # How this is tested
//
// The fault suite (go test -run TestFaults ./cmd/orch) runs real processes:
// its own PostgreSQL server, two coordinators, twenty agents on the local
// Docker engine (heartbeat 500 ms, node-down timeout 3 s) and 220 tasks. It
// injects, one after the other: kill -9 of an agent (started again once its
// tasks moved); an agent frozen with SIGSTOP until it is declared down, then
// woken; kill -9 of one of the two coordinators during a burst of
// submissions; a PostgreSQL restart, down longer than the timeout; a Docker
// engine that refuses every request (one agent talks to Docker through a
// proxy the test switches off); and an agent cut off from the database
// (through a TCP proxy that the test cuts) until the tasks on its node run
// elsewhere, six of them with stop_after_disconnect 1s. After each it checks,
// with the database and with Docker's labels, that no accepted task is lost,
// that no task has live containers on two nodes (nor a live container of an
// old attempt), and that all of it held within node-down timeout + 10 s of
// the fault, and logs one line per fault with the recovery time broken down
// (moved, placed, claimed, running). During the cut the tasks that did not
// ask to fence themselves run twice, as designed, until the agent is back in
// touch; the suite fails if any of the six that did is ever seen on two
// nodes. Most of each recovery is the node-down timeout and Docker starting
// the moved containers, so on a heavily loaded machine a single fault can go
// over the bound (never with a task lost or running twice); the breakdown
// shows where the time went. In this package, a test cuts an agent's
// connections to the database through a TCP proxy and checks the same for
// self-fencing without Docker.
package agent
