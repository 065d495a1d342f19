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
// # The claim
//
// An agent claims the tasks placed on its node in one statement: a CTE that
// selects the node's scheduled tasks in order with FOR UPDATE SKIP LOCKED and
// LIMIT n, moves them to starting with UPDATE ... FROM ... RETURNING, and
// inserts their events. The same round trip counts the scheduled tasks the
// claim left: fewer than the limit left behind means some were held by
// another transaction for a moment, and the agent should look again soon
// rather than wait for a notification that has already been sent.
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
// create to claim. The pass runs with jit = off (PostgreSQL's JIT compiled the
// placement statement for over a second per pass), and host ports reach it as
// arrays rather than JSON, which kept the planner's estimates sane.
//
// # Notifications
//
// Work is announced with pg_notify: orch_pending wakes the schedulers (a task
// back to pending, a node back, an uncordon), and each node has a channel of
// its own (orch_node_ and the node id) on which its agent hears about
// placements and stop requests. Payloads stay empty: listeners read the
// tables. A notifying commit holds a database-wide lock through its WAL flush
// (PostgreSQL queues notifications in commit order), so creating a task
// notifies after its commit, in a transaction of its own that commits
// asynchronously, and a coordinator that will place the task itself does not
// notify at all; creates then group-commit instead of queueing for one flush
// each. A notification is a hint: should it be lost, periodic passes and
// polls find the work anyway.
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
//     round trips). What would cut it further: a transaction-mode pooler
//     (PgBouncer) between the agents' pooled connections and Postgres, so
//     that beats land on a few warm backends (the LISTEN connection needs a
//     session of its own and would stay direct).
//   - Every NOTIFY wakes every listening agent. PostgreSQL signals every
//     connection that LISTENs in the database on every notifying commit,
//     whatever the channel, and each wakes, reads the queue and sleeps again;
//     the server CPU of one NOTIFY grows with the number of listening agents
//     (orch bench measures it). orch sends one notification per scheduling
//     pass and none per API create; beyond a thousand agents, agents would
//     have to be woken differently (channels spread over several databases,
//     or long-polling claims).
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
package postgres
