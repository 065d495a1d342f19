// Package postgres is orch's work queue in PostgreSQL: it owns every query
// that reads or writes tasks, nodes and events. Everyone else calls typed
// methods on Store and never writes SQL.
//
// The tables themselves, column by column, and the reporting views are
// described in package sql, which holds the migrations. Subpackage pgserver
// starts a private PostgreSQL server (for orch dev and orch bench); pgtest
// gives each test a database of its own, cloned from a migrated template.
//
// # The database is the single truth
//
// Every task, node, placement and state change is a row. A process may cache,
// but after a crash of any process the database alone is enough to carry on:
//
//   - an accepted task (HTTP 201) is committed and never lost afterwards;
//   - every state change is one transaction that also appends its
//     task_events row, and a pg_notify that announces it is sent in the same
//     transaction or after its commit, so a listener never hears about
//     uncommitted work;
//   - a node never holds more reserved CPU, memory or disk than it offers,
//     whatever number of coordinators race;
//   - every write an agent makes about a task is fenced by its lease (below);
//   - nothing needs to reach an agent: agents dial out, and everything that
//     matters flows through tables.
//
// Driver errors are translated once, into the sentinels of package queue
// (ErrNotFound, ErrConflict, ErrNotOwner, ...), which the HTTP and CLI edges
// map to statuses and exit codes.
//
// # Task states and transitions
//
//	pending ──▶ scheduled ──▶ starting ──▶ running ──▶ completed   (exit code 0)
//	   │            │             │           ├──────▶ failed      (non-zero exit, or could not start)
//	   └────────────┴─────────────┴───────────┴──────▶ stopped     (a user asked; see desired_state)
//
// starting is the seed's Scheduled → Running edge made visible: an agent has
// claimed the task and is creating its container. A task goes back to pending
// when it must be placed again: its node was lost or drained, or its restart
// policy restarts it after a backoff. The allowed transitions are one table in
// package queue (queue/transitions.go); the store refuses any other change
// and writes nothing. A transition is one statement: it locks the task's row,
// checks the source state and the lease, writes the new state, releases the
// node's reservation (and its host ports) when the task stops holding one,
// appends the event and wakes the schedulers when the task needs placing
// again. Zero rows back means the change was refused.
//
// Stopping a task is a change of its desired state (running → stopped): a
// task no agent holds yet is stopped at once, one that an agent runs is
// stopped by that agent, which hears about it on its node channel.
//
// # Leases and fenced writes
//
// A task's lease is its node and its attempt number, bumped at every
// placement. Every write an agent makes names the lease:
//
//	UPDATE tasks SET state = $3, ... WHERE id = $1 AND attempt = $2 AND node_id = $4
//
// Zero rows means "you no longer own this task" (queue.ErrNotOwner): the
// agent stops its container. The same holds for health and log
// writes, so an agent that lost a task (declared down while frozen or cut
// off, its node drained past the deadline) changes nothing about it, while
// the new attempt runs elsewhere.
//
// # Creating tasks
//
// Every task is made by one statement (tasks_batch.go): a batch of up to
// MaxBatch tasks goes to the server as one jsonb parameter, read with
// jsonb_to_recordset, and one INSERT ... SELECT writes the task rows, their
// sealed secrets and their first events; a single create (CreateTask), a
// batch (CreateTasks, POST /tasks with an array) and a job's new tasks all
// use it, so names, secrets and events cannot differ between them. The
// statement is a transaction of its own: a batch costs one commit. When a
// unique index refuses it (an id or a live name taken), nothing was
// stored, and a second try in a transaction inserts with ON CONFLICT DO
// NOTHING and looks at each task left out: a resubmission (SubmitTasks:
// the id exists with the same spec) is answered with the stored task;
// anything else rolls the batch back with a queue.ItemError that names the
// task by its index. A task created without a name is named task-<short
// id>, which the name indexes leave out (sql/00055); a name of that shape
// given on purpose is checked against the live tasks first, through the
// short id's index.
//
// # The claim
//
// An agent claims the tasks placed on its node in one statement: a CTE that
// selects the node's scheduled tasks in order with FOR UPDATE SKIP LOCKED and
// LIMIT n, moves them to starting with UPDATE ... FROM ... RETURNING, and
// inserts their events. The same round trip counts the scheduled tasks the
// claim left: fewer than the limit left behind means some were held by
// another transaction for a moment, and the agent should look again soon
// rather than wait for a notification that has already been sent. The
// agent claims as soon as it wakes, before it reads its leases and stop
// requests, so that those reads stay off a task's path from create to claim.
//
// # The scheduling pass
//
// A pass is one transaction. It locks a batch of pending tasks in queue order
// (ORDER BY queued_at, id LIMIT n FOR UPDATE SKIP LOCKED, served by an index
// that holds the whole sort key), so replicas take different tasks; reads
// every node and the host ports in use; and lets package scheduler plan in
// memory. It then locks the nodes it chose with FOR NO KEY UPDATE SKIP LOCKED
// (never waiting, so passes cannot deadlock) and, in a statement of its own
// under those locks, grants per node the planned tasks in plan order while
// their running total still fits under what the node has free now, refusing
// any whose host port is held there (node_ports, whose primary key backs the
// check). The reserved counters on the node row are raised by a guarded
// UPDATE in the same statement, and lowered by the statement that moves a
// task out of its live states, which also deletes its node_ports rows. What a
// pass could not commit (the node was being filled by another replica, or
// filled up since it was read) is re-planned in the same pass on fresh
// figures, other replicas' nodes left out, up to four times, and otherwise
// retried by the next pass. A pass that places round-robin tasks holds the
// scheduler_cursor row until it commits, so such passes take turns; others
// never wait for it. The pass notifies the chosen nodes' channels in the same
// transaction.
//
// A pass commits asynchronously (synchronous_commit off for that transaction):
// nothing acts on a placement before the agent's claim commits, and flushing
// the claim flushes the placement before it, so a crash can only lose a whole
// pass, which the next one redoes. That takes a WAL flush out of the path from
// create to claim. Both settings ride on the pass's BEGIN (one round trip),
// and the nodes a round filled are re-read only when another round re-plans,
// so that an uncontended pass is six round trips. The pass runs with jit = off (PostgreSQL's JIT compiled the
// placement statement for over a second per pass), and host ports reach it as
// arrays rather than JSON, which kept the planner's estimates sane.
//
// # Notifications
//
// Work is announced with pg_notify: orch_pending wakes the schedulers (a task
// back to pending, a node back, an uncordon), orch_jobs the job loops (a job
// became due: sql/00025_job_wake.sql), and each node has a channel of
// its own (orch_node_ and the node id) on which its agent hears about
// placements and stop requests. Payloads stay empty: listeners read the
// tables. A change of a job's task notifies only when it makes the job
// due, not again while the job waits for its reconciliation, so most
// agent writes do not notify; after a reconciliation, Store.ReconcileJob
// waits for the changes of its job still in flight, which may have
// stayed quiet, so that the coordinator's next look finds them. A notifying commit holds a database-wide lock through its WAL flush
// (PostgreSQL queues notifications in commit order), so creating a task
// notifies after its commit, in a transaction of its own that commits
// asynchronously, and a coordinator that will place the task itself does not
// notify at all; creates then group-commit instead of queueing for one flush
// each. A notification is a hint: should it be lost, periodic passes and
// polls find the work anyway.
//
// # Large fleets: a transaction pooler, and wake-ups without a LISTEN each
//
// Connected straight to PostgreSQL, an agent holds about three server
// processes (a pool of two, and its LISTEN connection): 1,000 idle agents
// held 3,206 backends and took two cores of this repository's 2-core test
// machine, and every NOTIFY woke every listening backend. A fleet of
// thousands therefore reaches PostgreSQL through PgBouncer in transaction
// mode, which hands each transaction whichever of its few server
// connections is free. The deployment:
//
//   - PgBouncer (Debian's 1.18 works): pool_mode = transaction;
//     default_pool_size 20 per database and user and max_db_connections 40
//     (what the server's cores can use: more only queue inside PostgreSQL);
//     max_client_conn ≥ 2 × agents + coordinators' pools, and a file limit
//     (ulimit -n) above it; server_reset_query empty (nothing session-level
//     is left behind); ignore_startup_parameters =
//     extra_float_digits,search_path,statement_timeout. pgserver.StartBouncer
//     writes exactly this configuration (the e2e test and orch bench use it).
//   - orch agent and orch coordinator take --database-pooler transaction
//     (Pooler): statements then go out unnamed with their parameter types
//     described once and cached by the client (pgx's cache_describe mode),
//     since PgBouncer 1.18 cannot follow named prepared statements from one
//     server connection to the next, and an agent's pool is bounded to
//     agent.PooledConns (2).
//   - LISTEN does not survive a transaction pooler, so only the coordinators
//     listen, each on one direct connection of its own (orch coordinator
//     --listen-database-url, straight to PostgreSQL): a handful of listening
//     backends whatever the fleet. Every wake-up of a node is sent on its
//     node channel and on orch_wake with the node's id (orch_wake_node, in
//     00015_wake.sql); the coordinators relay it to the agents, which
//     long-poll them (orch agent --coordinator URL, repeatable; package
//     coordinator, GET /nodes/{node}/wake). The answer is only a hint: the
//     agent then claims with the same FOR UPDATE SKIP LOCKED statement, in
//     PostgreSQL, and agents still only dial out.
//   - Migrations take a session-level advisory lock: run orch migrate up (or
//     a coordinator without --no-migrate) with a direct URL.
//
// How agents are woken was decided from measurements (orch bench, phases
// idle and fleet; figures of this machine, 2 cores shared with other jobs,
// so read them with the load average the bench prints):
//
//   - A LISTEN per agent: the fastest wake-up, but a server process per agent
//     that every notifying commit signals: a NOTIFY with 1,000 agents
//     listening cost the server milliseconds of CPU instead of microseconds,
//     and the fleet's backends alone exhaust max_connections. It stays the
//     mode of an agent connected directly (small clusters, orch dev).
//   - Polling a cheap per-node row through the pooler: no server process per
//     agent, but the latency is the poll interval, and the cost is one
//     statement per agent per interval whether there is work or not:
//     10,000 agents polling every 2 s send 5,000 statements a second, ten
//     times the heartbeats of the same fleet (500 a second, below), each
//     planned anew through the pooler, for a 1 s mean wake-up. It remains
//     the fallback of an agent that knows no coordinator.
//   - A long-poll on the coordinators carrying only a hint (chosen): idle
//     agents cost PostgreSQL nothing between their heartbeats, a wake-up is
//     one NOTIFY heard by a few coordinators and an HTTP answer, and
//     create→claimed stays in tens of milliseconds across the fleet. The
//     price is a hop through a coordinator and that agents must be told
//     where the coordinators are.
//
// What an idle fleet costs, and what was cut (orch bench --phases fleet
// prints the figures; CPU on a shared machine is an upper bound, printed
// with the load average):
//
//   - Backends: 22 client backends through PgBouncer for 1,000 or 10,000
//     agents (3,206 for 1,000 connected directly).
//   - Heartbeats: 500 a second at 10,000 nodes (the 20 s bound; see package
//     agent, Heartbeats), each a call of orch_beat, whose plans the server
//     connection keeps: 250-300 µs of server CPU each on this machine,
//     which alone is 12-15% of a core at that size.
//   - The node's stats went with every beat once a cluster beat every 20 s
//     (00017_beat_usage.sql), and a history row per beat was a row and
//     three index entries more than the beat: they now come every three
//     beats in a cluster beating that slowly (a minute's resolution).
//   - Each idle agent sent five unprepared statements a cycle besides its
//     beats (the safety-net claim with its lease check and stop requests,
//     and the reconcile's reads of its tasks and volumes), planned anew
//     through the pooler: more of the fleet's cost than the beats. The
//     beat now returns the node's digest (00060_beat_digest.sql) and an
//     agent that finds nothing new in it asks nothing (package agent, the
//     idle cycle); the beat costs about a fifth more for it.
//
// The fleet phase before and after those two changes: 1,000 agents 8.3%
// of a core (load average 12) before, 4.2% (load 7.6) and 4.1% (load 0.3)
// after; 10,000 agents 48% on a quiet machine before, 26%, 30% and 34%
// (load 2.4 to 4) in three runs after. The idle cost at 1,000 agents is
// under its 5% target, that of 10,000 above its 20%: what remains there is
// the beats themselves. One beat costs the server about 0.25-0.3 ms of CPU
// from a single busy client (pgbench, 10,000 beats), but about twice that
// in the fleet, where each of 500 short transactions a second wakes a
// backend whose caches have gone cold, and is parsed, planned and
// committed on its own.
// Fewer of them would need a heartbeat that is not a transaction per node
// (beats relayed and written in batches by the coordinators, at the price
// of the agent's own proof of reaching the database that self-fencing
// rests on), or a longer interval than the 30 s detection target allows.
//
// # Least-privilege agents
//
// An agent may connect to Postgres with a role of its own, so that a
// compromised machine cannot touch the rest of the cluster. orch node token
// NODE --database-url OWNER_URL creates the role orch_agent_<hash of NODE>
// (or gives it a new password) and prints the URL its agent connects with;
// --revoke drops it. Row-level security, enforced by Postgres, then lets that
// role read and change only:
//
//	nodes        register through orch_register_node (below), heartbeat and
//	             report usage for the row named NODE; never write its capacity,
//	             labels or reservations directly, never cordon, uncordon or
//	             drain it
//	tasks        read the tasks placed on NODE (and those it ran before); while
//	             one is live there, update its state, container, exit code,
//	             error, health, or give it back to the queue; never move one to
//	             another node, revive a finished one, change what a task runs
//	             (column privileges) or create one
//	task_secrets read the sealed secrets of a task live on NODE, nothing else
//	task_events  read the events that name NODE; append only about a task on
//	             NODE now
//	task_logs, task_log_totals
//	             read the logs of tasks NODE ran; write only those of a task on
//	             NODE now
//	node_stats, task_usage, task_stats
//	             rows of NODE (about a task on NODE now)
//	node_ports   read those of NODE
//	agent_roles, scheduler_cursor, task_counts, the views
//	             nothing
//
// Capacity and privileges are the admin's to bound. orch_register_node, a
// function that runs as the schema's owner, registers an agent role's own
// node only, with at most the capacity its role allows (orch node token NODE
// --max-cpu/--max-memory/--max-disk; by default what the node first
// registered with), without any label of the reserved orch.* space, and with
// orch.allow-privileged only when both the admin (orch node token
// --allow-privileged) and the agent (--allow-privileged) say so. A node's
// reservations and host ports are released by a trigger when a task leaves
// its live states, whoever moves it, so no role writes them but the
// coordinators' placement. Checks that must look at another table run
// through small functions that run as the owner (orch_agent_holds), because
// policies on tasks and task_events that read each other would recurse.
//
// Every agent role belongs to the group role orch_agent, which holds the
// privileges. The coordinators and orch migrate connect as the owner of the
// schema, which row-level security does not restrict; report users read the
// views, which run as their owner. An agent started with a role that belongs
// to another node stops at once and says which orch node token to run.
// Without per-node roles, agents connect as the owner, as in orch dev.
//
// # What costs what
//
// orch's throughput is the machine's commit rate. A task is about four write
// transactions (create, claim, running, exit, plus its share of a pass, of
// its wake-up notification and of heartbeats) and one to two WAL flushes
// after group commit; placing a task writes about as much as inserting
// it (the task row and its index entries, the event row and its index
// entries, the node's counters: eight WAL records). So orch bench states its
// figures next to pgbench's on the same server: tasks/s × write transactions
// per task ÷ pgbench TPS close to 1 means orch uses about as many commits as
// pgbench gets from the machine. Where the rest goes:
//
//   - Idle agents cost one cold backend wake-up per heartbeat. Each beat wakes
//     the agent's server process, which the CPU caches have forgotten since
//     the last one: an empty query costs several times more server CPU on a
//     connection idle for 2 s than on a warm one. Hence heartbeats and usage
//     writes commit asynchronously (a lost one is replaced by the next), the
//     cluster's heartbeat rate is capped (see package coordinator), and
//     pooled connections are pinged before use only after a minute idle
//     (pgxpool's default, a second, made every heartbeat and every wake-up two
//     round trips). Through a transaction pooler (above) beats land on a few
//     warm backends instead; each statement is then planned anew, though
//     (no prepared statements), which is most of what a heartbeat costs
//     there.
//   - Every NOTIFY wakes every listening agent. PostgreSQL signals every
//     connection that LISTENs in the database on every notifying commit,
//     whatever the channel, and each wakes, reads the queue and sleeps again;
//     the server CPU of one NOTIFY grows with the number of listening agents
//     (orch bench measures it). orch sends one notification per scheduling
//     pass and none per API create; beyond a few hundred agents, agents are
//     woken through the coordinators instead (above).
//   - Exits on one node queue on its row. The transaction that ends a task
//     also releases its reservation on the node's row and holds that row lock
//     through its commit's flush, so one busy node finishes at most about one
//     task per WAL flush. Batching an agent's exits into one statement, or
//     releasing reservations in batches, would lift it.
//   - A deep backlog stays cheap to take from: the pending-task index holds
//     the pass's whole sort key, so a pass reads the tasks it takes instead of
//     reading and sorting every pending task. Tests run EXPLAIN on the pass,
//     the claim, the heartbeat and the bench's queries to keep it so. A lower
//     fillfactor on nodes was measured and not needed: heartbeats are HOT
//     updates already.
//
// Placements through PostgreSQL, for 1,000 nodes and 100,000 pending tasks
// (1 and 3 replicas, each with its own Store and pool, running passes back to
// back):
//
//	go test ./queue/postgres -run '^$' -bench SchedulePass -benchtime 1x
//
// It also reports inserts/s: how fast the same database inserted the 100,000
// tasks with their events just before, a yardstick of the machine's write
// speed in that very run, so that a figure can be read on a loaded machine.
// ORCH_BENCH_BATCH and ORCH_BENCH_STRATEGY change the batch size and strategy;
// ORCH_TEST_DATABASE_URL points it at another server. Larger batches amortise
// the per-pass work (the node snapshot, the round trips); with several
// replicas, a replica that finds a node being filled by another skips it and
// re-plans, so a share of placements is retried by a later pass.
//
// # Failover: a standby, a failover manager, and a URL with every host
//
// PostgreSQL is orch's only truth, so a production cluster runs it as a
// primary with a streaming standby and a failover manager that promotes the
// standby when the primary dies. orch needs no part in the promotion; what
// it does is ride it out.
//
// Every command that takes --database-url (orch coordinator, agent, migrate,
// node token, dev, bench; ORCH_DATABASE_URL) accepts a multi-host URL, in
// either of libpq's forms:
//
//	postgres://orch:…@db1:5432,db2:5432/orch?target_session_attrs=read-write
//	host=db1,db2 port=5432,5432 dbname=orch user=orch target_session_attrs=read-write
//
// A new connection tries the hosts in order and keeps the first that accepts
// writes: a dead primary refuses, a standby is turned down while it is
// read-only, and the promoted one is taken. orch node token keeps every host
// and target_session_attrs in the URL it prints for an agent. A virtual IP
// or HAProxy in front of the members (checking Patroni's REST API, /primary)
// works as well: then the URL names that one address.
//
// When the primary dies, every orch process carries on, without a restart:
//
//   - pgxpool drops the broken connections and dials again, with the URL's
//     hosts, at the next use; the LISTEN connections reconnect with backoff
//     and callers poll meanwhile (Listen);
//   - the store repeats what failed only because the database was away —
//     broken or refused connections, SQLSTATE 25006 (read-only: a standby
//     or a demoted primary), 57P01–57P03 — with backoff, within the call's
//     deadline (DefaultCallTimeout, 30 s), when that is safe: reads, a
//     transaction that failed before its COMMIT was sent (it did not
//     commit), and creates, which are idempotent (below); a COMMIT whose
//     answer was lost is not repeated, and the caller's own retry (the
//     agent's next write or beat, the next scheduling pass or sweep, both
//     idempotent) takes over. An API call made during the switch so waits
//     for the new primary and answers as usual;
//   - a create is idempotent: the store fixes a task's id before its first
//     try, and a try that finds the id taken by a task of the same spec
//     (queue.Task.SameSpec) takes it as its own; a client that chose the
//     id may so send a create whose answer it lost again (SubmitTask, and
//     the API's POST /tasks), and a task is never created twice;
//   - no node is declared down because the database was away. While it was,
//     no agent could heartbeat. A coordinator marks nodes down only after it
//     has itself been in touch with the database for a whole node-down
//     timeout (package coordinator), and the statement that marks them
//     counts the timeout from the database's return, not only from the
//     nodes' last heartbeats: orch_db_back_since() is the server's start or
//     the first sweep on a promoted standby (a promoted standby's
//     pg_postmaster_start_time is its own start, often days before the
//     promotion; db_epochs in package sql);
//   - agents keep their containers running: losing the database is not a
//     reason to stop work (a task that asked for it with
//     stop_after_disconnect is stopped after that long, as in any outage).
//
// The fault test (cmd/orch, TestCoordinatorAndAgents_PrimaryKilledStandbyPromoted_NothingLostNothingDown)
// does it for real: a primary and a synchronous standby made with the
// host's initdb and pg_basebackup (pgserver.StartStandby), two coordinators
// and four agents on the multi-host URL, 500 tasks running and creates
// flowing through the API, kill -9 of every process of the primary, and
// pg_ctl promote seven seconds later, past the node-down timeout. Every
// task acknowledged before or during the switch exists afterwards and ran
// once, no node was declared down, every process still runs, and no create
// failed, nor did a client have to send one again: the slowest took 7.7 to
// 8.2 s in six runs, the time the standby took to be promoted.
// Before the store retried, the same test saw creates fail for the whole
// switch (1,000 errors in the seven seconds).
//
// # Synchronous replication with Patroni and etcd
//
// The deployment orch documents is Patroni (Debian: patroni) with an etcd
// cluster (etcd-server) of three members as its consensus store, one
// PostgreSQL per Patroni member, and synchronous replication, because an
// accepted task (HTTP 201) must never be lost: with synchronous_commit = on
// and a synchronous standby, a COMMIT returns only once the standby has the
// WAL on disk, so whatever orch acknowledged survives the primary. The
// settings, in Patroni's dynamic configuration (patronictl edit-config):
//
//	synchronous_mode: true
//	    Patroni manages synchronous_standby_names and promotes only the
//	    synchronous standby, so no acknowledged commit is lost in a
//	    failover. With one standby, a primary whose standby is gone waits
//	    for none (writes go on, unprotected) until it is back;
//	synchronous_mode_strict: true
//	    instead refuses to commit without a synchronous standby: orch's
//	    calls then wait and fail after their deadline. Choose it when losing
//	    an accepted task is worse than stopping; with three members (two
//	    standbys) neither costs availability when one machine fails;
//	maximum_lag_on_failover: 1048576
//	    the most WAL (bytes) a standby may be behind to be promoted: with
//	    synchronous_mode the synchronous standby is never behind on what was
//	    acknowledged; it matters for asynchronous replication (below);
//	ttl: 20, loop_wait: 5, retry_timeout: 5
//	    a dead primary's leader key expires after ttl and a standby is
//	    promoted within about a loop after: a failover takes ttl + loop_wait
//	    at worst. Patroni's defaults (30, 10, 10) give up to 40 s, longer
//	    than an orch call's 30 s deadline, so API calls made right after the
//	    primary died would fail; 20/5/5 (loop_wait + 2 × retry_timeout ≤
//	    ttl) keeps a failover inside it. orch's node-down timeout needs no
//	    change for the failover's sake: it counts from the database's
//	    return;
//	postgresql.parameters: synchronous_commit: "on", hot_standby: "on",
//	    hot_standby_feedback: "on", wal_log_hints: "on"
//	    (with postgresql.use_pg_rewind: true, the old primary rejoins as a
//	    standby; hot_standby_feedback keeps long report queries on a standby
//	    from being cancelled by vacuum on the primary). remote_apply instead
//	    of on makes every acknowledged write visible on the synchronous
//	    standby at once, for readers of a replica, at the price of a replay
//	    in every commit's wait.
//
// orch's own settings stay as they are: give every orch process the URL
// with all members and target_session_attrs=read-write.
//
// # Asynchronous replication
//
// Without a synchronous standby a COMMIT returns before any standby has the
// WAL, and a promotion loses what the standby had not received yet (at most
// maximum_lag_on_failover). For orch that means, for the last moments
// before the failure: a create that was acknowledged may be gone (breaking
// "an accepted task is never lost"; a client that chose the id and creates
// again gets it back); a claim, a start or an exit an agent recorded may be
// undone, so the database shows a task in an earlier state than its
// container is in (orch has no test of this case yet); a placement may be
// undone and is redone by the next pass. Nodes are not declared down either
// way. Asynchronous replication suits a cluster that
// can resubmit its recent work; otherwise use synchronous_mode.
//
// # Reading reports from a replica
//
// The report_* views (package sql) only read, so a hot standby serves them:
// point report users at a standby (its own host, or
// target_session_attrs=standby / prefer-standby in a multi-host URL) and
// keep their queries off the primary. A standby lags the primary by its
// replay delay (nothing with remote_apply); a query that runs long on a
// standby may be cancelled by replay (max_standby_streaming_delay) unless
// hot_standby_feedback is on. Coordinators, agents and orch migrate need the
// primary: they write.
package postgres
