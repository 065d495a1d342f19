// Package coordinator is orch's server side: the HTTP API, the scheduling
// loop and the node-liveness sweeper. It keeps no state between
// requests; every replica reads and writes the same database, so any number
// of them can run side by side and any one can die at any moment.
//
// # Scheduling loop
//
// Every replica runs scheduling passes: when a task is created or put back to
// pending, when a node is uncordoned, and every --pass-interval (1 s, with
// jitter) otherwise. A pass that filled its batch (--batch, 500) is followed
// at once by another, so a deep queue drains at full speed. A task created
// through the API is placed by the coordinator that accepted it: the handler
// wakes its own loop instead of sending a NOTIFY (a NOTIFY is dear, see
// package queue/postgres). Work that appears otherwise (a task back to
// pending, a node back, an uncordon) is announced on the orch_pending
// channel, and the timed passes ensure that another replica's work is never
// stranded. How a pass places tasks is described in package scheduler (the
// choice) and package queue/postgres (the transaction).
//
// # Sweeper and lost nodes
//
// Every replica runs a sweeper that, in idempotent one-transaction steps,
// marks down a node silent for --node-down-timeout (10 s), then sends the live
// tasks of every node that must give them up back to pending, each with an
// event that says why ("lost: node n3 is down (no heartbeat for 10.4s)"),
// releasing their reservations; the scheduler places them on other nodes as
// new attempts. A node must give up its tasks when it is down, when its
// engine has not answered for longer than the timeout, or when it is draining
// past its deadline. Two replicas sweeping at once, or one killed halfway,
// move each task exactly once. No node is declared down for a timeout after
// PostgreSQL (re)started, nor by a replica that has not itself been connected
// for a whole timeout: a database outage silences every agent and says
// nothing about them. The agent of such a node, if it comes back, finds that
// its leases are gone and removes the containers (see package agent).
//
// Losing a node (down, engine gone, drained) is not the task's end: its tasks
// are placed again on other nodes whatever their restart policy, even never,
// and it does not count as a restart, as Nomad and Kubernetes reschedule work
// lost with its node. An accepted task is never silently dropped. The price,
// for a node that was only cut off, is that its old container may run until
// its agent is back in touch and removes it, unless the task asked to be
// stopped first (self-fencing, see package agent).
//
// # Heartbeat scaling
//
// The sweeper also keeps the heartbeat_policy row at the interval at which all
// live nodes together beat at most --max-heartbeats-per-second (50, as Nomad's
// max_heartbeats_per_second; 0: no limit), and agents beat at that interval
// when it is longer than their own. Up to 100 nodes nothing changes; 1,000
// nodes beat every 20 s, which keeps a thousand idle agents from costing the
// database a core (each beat wakes a server process the CPU caches have
// forgotten). The price is detection time: a node may stay silent for
// max(node-down timeout, its interval + half the timeout), 25 s at 1,000
// nodes, and the node's own interval (nodes.heartbeat_interval_ms) is what
// counts, so a policy that shrinks again takes no node by surprise. The
// interval grows no longer than --max-heartbeat-interval (20 s), so a lost
// node is down within 27 s (with a sweep) at any size: 10,000 nodes beat 500
// times a second, which orch bench's fleet phase measured (package agent,
// Heartbeats).
//
// # Jobs
//
// The job API (POST/GET /jobs, GET/DELETE /jobs/{name}, and /plan, /scale,
// /revert, /restart, /promote, /endpoints, /versions, /deployments under
// it) takes the job spec described in package queue (Jobs), and every
// replica runs a job loop that reconciles the jobs that are due: changed
// by a user, with a task that started, ended or changed health, a node
// that came, went or was cordoned (system jobs), a timer the last
// reconciliation set (a health or progress deadline, a periodic tick), or
// the 30 s fallback. The statement that makes a job due notifies
// orch_jobs, on which every replica listens (through
// --listen-database-url when it reaches PostgreSQL through a pooler), so
// the loops look at once; they also look every --pass-interval, should a
// notification be lost. A reconciliation is one transaction that holds its
// job's row, skipping a job another replica holds, so replicas share the
// jobs without a leader: it reads the job's tasks, lets scheduler.Reconcile
// decide, and writes new pending tasks (placed by the scheduling passes as
// any task), stop requests, deployments, the job's status and a periodic
// launch. POST /jobs/{name}/plan runs the same decision and the scheduler
// on what a read-only transaction sees, and writes nothing.
//
// # Drain
//
// POST /nodes/{node}/drain (orch node drain NODE [--deadline 1m]) cordons the
// node, sends its unclaimed tasks back to the queue at once, and has its agent
// stop its running tasks and hand them over: they move to other nodes as new
// attempts, not restarts. Whatever is left at the deadline (default 1 m, at
// most 24 h) is moved by the sweeper. The CLI waits until the node is idle
// (drained in orch node list) unless --detach; uncordon ends the drain.
//
// # Coordinators and PostgreSQL failing
//
// Every scheduling pass and every sweep step is one transaction, so a
// coordinator killed mid-pass leaves nothing locked or half-placed. When
// PostgreSQL restarts, containers keep running; agents and coordinators retry
// with backoff (the pool reconnects, LISTEN reconnects, polling covers the
// gap), the exits seen meanwhile are written once the database is back, and
// state converges.
//
// # HTTP API
//
// All bodies are JSON. A create is safe to send again: Client.CreateTask
// (every Go caller, the CLI among them) chooses the task's id and, while the
// coordinator cannot be reached, the answer is lost or the answer is a 5xx,
// sends the create again with backoff for up to DefaultCreateRetry, so that a
// coordinator restart or a database failover during a create ends in one
// task and success. The answer carries "warnings" when no node in the
// cluster could ever hold the task (it is accepted all the same, as such a
// node may join).
//
// A task's {id} in a route is its id, its name or a unique start or end of
// its id (the status page prints the last twelve digits), as Docker finds
// containers. Names are unique among live tasks created on their own (a
// second live "web" is refused with 409 naming the first); a finished
// task keeps its name for history, and a name then means the newest task
// of that name. A job's tasks are named JOB.N. A job's {name} may also be
// its id or a unique part of it; a reference that fits several is a 400
// that lists them. The routes:
//
//	POST   /tasks                          create a task → 201 with the stored task; 200 with it when the body's
//	                                       id exists with the same spec (a create sent again), 409 when with another;
//	                                       a JSON array of up to 1000 tasks → an array of them (below)
//	GET    /tasks?state=running&node=NAME&limit=N
//	                                       list tasks, newest first (state may list several, comma-separated;
//	                                       1000 unless limit= says otherwise, at most 10000)
//	GET    /tasks/{id}                     a task with its events
//	DELETE /tasks/{id}                     request a stop → 202 (an agent will stop it) or 200 (already stopped)
//	DELETE /tasks/{id}?purge=true          delete a finished task and all its records → 204 (409 if it runs)
//	GET    /tasks/{id}/logs?tail=N&after=ID&format=text&follow=true
//	                                       the task's output (below)
//	GET    /tasks/{id}/stats?limit=N       usage history, newest first
//	GET    /nodes                          nodes
//	GET    /nodes/{name-or-id}             a node
//	GET    /nodes/{node}/stats?limit=N     the node and its usage history, newest first
//	POST   /nodes/{node}/cordon            stop placing new tasks on the node
//	POST   /nodes/{node}/uncordon          resume placing (also ends a drain)
//	POST   /nodes/{node}/drain             start draining; body {"deadline": "1m"} (optional)
//	GET    /healthz                        200 {"status":"ok"} when the database answers, 503 otherwise
//	GET    /metrics                        Prometheus text format
//	GET    /                               the status page (HTML; ?state=, ?node=)
//	GET    /ui/tasks/{id}                  a task's page (HTML)
//
// Errors are {"error": "...", "field": "...", "hint": "..."} with status 400
// (bad input), 401 (no valid token), 403 (a token whose scope is too weak, or
// a forged request, below), 404, 409 (a conflict, e.g. a known id with
// another spec, a live task's name, or a change the task's state does not
// allow), 413 (a body over 1 MiB, or 16 MiB for an array), 415 (a
// change whose body is not declared JSON) or 500. The sentinels of package
// queue are mapped to these statuses in one place.
//
// A task:
//
//	curl -s -XPOST localhost:8989/tasks -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{
//	  "name": "web", "image": "nginx:1.27", "cpu": "500m", "memory": "256MiB",
//	  "env": {"MODE": "prod"}, "ports": [{"container_port": 80, "host_port": 8080}],
//	  "restart_policy": "on-failure", "max_restarts": 3, "command": ["nginx", "-g", "daemon off;"]}'
//
// CPU is a number of cores or a string ("500m", "0.5"); memory and disk a
// number of bytes or a string with a unit ("512MiB", "2G"). A task may also
// carry "id" (a UUID chosen by the client), "labels", "disk",
// "strategy": "spread" (overriding the coordinator's), "constraints":
// ["zone=eu", "gpu!=none"] (each also as {"key": "zone", "op": "=", "value":
// "eu"}; see package scheduler), "health_check" (see package agent),
// "stop_after_disconnect": "3s", "pids_limit" (below the node's process
// limit), "network" ("bridge", "none", or "host", which needs an admin
// token, as "privileged": true does), and "secrets" (below).
//
// # Secrets
//
// "secrets": {"DB_PASSWORD": "..."} (orch task create --secret K=V, or
// --secret-file K=PATH) are given to the container as environment
// variables, like env, but they are write-only: no answer, CLI output,
// event, log line, report view or error message ever holds a value — a task
// shows only their names, as "secret_keys". The coordinator seals them with
// the cluster's key (AES-256-GCM, the task's id as additional data; package
// queue/secrets) before they reach the database, so a dump of it or a
// report user sees ciphertext, and only the agent of the node the task is
// placed on may read the sealed row (row-level security) and open it. The
// key is a file shared by coordinators and agents (--secrets-key-file; orch
// token secrets-key FILE makes one, orch dev makes its own); a coordinator
// without one refuses tasks with secrets (400, naming the field). Plain env
// stays visible to read tokens, as in Nomad and Kubernetes.
//
// # Volumes
//
// "volumes": [{"source": "pgdata", "target": "/var/lib/postgresql/data",
// "read_only": false}] (orch task create --volume pgdata:/var/lib/...[:ro],
// also in a job's task template) mounts named volumes: Docker volumes made
// on first use, on the node the task is placed on, and kept after the task.
// The pass that first places a task naming one records where it lives (the
// volumes table, in the statement that places the task); every later task
// naming it is placed on that node, or waits with a reason saying so (a
// full node, a volume being deleted, two volumes on different nodes).
// GET /volumes lists them with their node and the live tasks mounting them;
// DELETE /volumes/{name} (admin; 409 naming the task while a placed task
// mounts it) answers 202: the volume's agent removes the Docker volume and
// then the row, or records why it could not yet (orch volume list shows
// it) and tries again at its next reconcile.
// A source that is an absolute path binds that host path: it needs an
// admin token (403 otherwise) and an agent started with
// --allow-host-mounts, which mounts only paths below its
// --host-mount-prefix (default /srv/orch), symbolic links resolved.
//
// # Private registries
//
// PUT /registries/{server} with {"username", "password"} (admin; orch
// registry login SERVER --username U --password-stdin) stores a registry's
// login for the cluster, sealed with the secrets key (bound to the server,
// as a task's secrets are bound to the task); GET /registries lists server
// and user, DELETE /registries/{server} forgets one. The password is in no
// answer, log line or event, and decoding errors of the body do not quote
// it. An agent about to pull an image that is not present reads the login of
// the image's registry (the host in its name, else docker.io) and opens it;
// its database role may read that row only while its node holds a live
// task of an image from that registry. Without a login, pulls are
// anonymous.
//
// POST /tasks also takes the seed orchestrator's body (the orchestrator of
// the book Build an Orchestrator in Go), a task event wrapping a task, with
// its integer states:
//
//	curl -s -XPOST localhost:8989/tasks -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{
//	  "ID": "266592cd-960d-4091-981c-8c25c44b1018", "State": 2,
//	  "Task": {"State": 1, "ID": "266592cd-960d-4091-981c-8c25c44b1018", "Name": "task-1", "Image": "strm/helloworld-http"}}'
//
// # Batches
//
// POST /tasks also takes a JSON array of up to 1000 tasks (postgres.MaxBatch;
// the body up to 16 MiB, each task up to 1 MiB) and stores them in one
// transaction, all or none, with one commit: a submission of thousands of
// short tasks costs the database a commit per thousand, not per task. Each
// element follows the rules of a single create (a privileged one needs an
// admin token, secrets are sealed, a client-chosen id makes it idempotent)
// and every element is checked before anything is stored. Errors name the
// element: 400 {"field": "[3].image", ...}; 403 for a task that needs a
// stronger token; 409 {"field": "[1]", ...} for an id that exists with
// another spec or a name a live task has. The answer is the array of
// tasks, in the order sent, each with its own "warnings": 201, or 200 when
// every one of them existed already with the same spec (the array sent
// again). Client.CreateTasks sends one (choosing the ids, and retrying as
// CreateTask does); orch task create --count N and -f FILE use it.
//
//	curl -s -XPOST localhost:8989/tasks -H 'Content-Type: application/json' -d '[
//	  {"name": "shard-1", "image": "workload:test", "command": ["-sleep", "1s"]},
//	  {"name": "shard-2", "image": "workload:test", "command": ["-sleep", "1s"]}]'
//
// GET /tasks/{id}/logs answers {"task_id", "state", "lines": [{"id",
// "attempt", "at", "stream", "line"}], "next", "dropped_lines",
// "dropped_bytes"}; after=NEXT reads on; format=text gives the lines as plain
// text; follow=true streams one such object per line of the answer (NDJSON)
// as new lines arrive (the coordinator polls every 250 ms), the last one with
// "done": true once the task has ended and every line it shipped was sent.
// Everything here is read from the database: nothing asks an agent.
//
// # Authentication
//
// The coordinator authenticates every request but GET /healthz with a bearer
// token (Authorization: Bearer <token>; a browser may send it as the password
// of Basic auth, so that the status page opens with the browser's own login
// prompt, or from a URL like http://orch:TOKEN@127.0.0.1:8989/: a 401 to a request that accepts text/html challenges with Basic
// only, because Chromium and Firefox read the first scheme of the header and
// cannot answer Bearer; API clients are challenged with Bearer).
// Tokens have a scope: read may look (every GET), write may also
// submit and stop tasks, admin may also manage nodes and ask for privileged
// containers or the host's network. They are configured with --admin-token,
// --write-token and --read-token (repeatable; env ORCH_ADMIN_TOKEN,
// ORCH_WRITE_TOKEN, ORCH_READ_TOKEN), either as the secret or as
// sha256:<hex> of it, so that a coordinator's configuration need not hold a
// usable secret; orch token generate prints a fresh token and its hash.
// Tokens are checked by hashing what was presented and comparing it with
// every configured hash in constant time (crypto/subtle), without stopping at
// the first match.
//
// The CLI sends --token / ORCH_TOKEN, or the token key of its config file, or
// the token file that orch dev writes (~/.config/orch/token, mode 0600).
//
// Safe default: a coordinator with no tokens configured treats every caller as
// admin, so it serves loopback only and says so at start: --listen :8989
// becomes 127.0.0.1:8989, and a non-loopback address is refused. Serving any
// other address without tokens needs an explicit --insecure. orch dev makes an
// admin token, prints it and stores it where the CLI finds it.
//
// TLS: --tls-cert and --tls-key make the coordinator serve HTTPS; the CLI
// honours https:// addresses and trusts an extra CA with --ca-cert /
// ORCH_CA_CERT.
//
// Forged requests. A browser sends cached Basic credentials with every
// request to the coordinator, also when a page of another site makes it, so
// state-changing requests are defended three ways: they must declare a JSON
// body (Content-Type: application/json, else 415), which a form cannot send
// and a script on another origin can only after a CORS preflight, which the
// API never grants; Basic credentials only ever grant reading (a change
// needs Authorization: Bearer, which a browser never adds by itself); and
// cross-origin browser requests that change state are refused outright by
// Go's http.CrossOriginProtection (the Sec-Fetch-Site header, else Origin
// against Host). The status page only reads, so a browser's login keeps
// working for it.
//
// Agents never talk to the coordinator; how they are kept to their own node
// in the database (per-node roles and row-level security) is described in
// package queue/postgres.
//
// # Input
//
// Every task, from the API or the CLI, goes through one validator (package
// queue): image reference syntax, name charset and length, CPU and sizes with
// units, environment variable names, ports, command length, restart policy,
// labels, secrets. Unknown JSON fields, trailing data and non-JSON content
// types are refused; bodies over 1 MiB get 413. The decoder and the size and CPU
// parsers have fuzz targets (go test -fuzz FuzzDecodeTask ./coordinator;
// FuzzParseBytes and FuzzParseCPU in ./queue) with seed corpora in
// testdata/fuzz; after the tests, CI runs each on a fixed number of generated
// inputs (a count rather than -fuzztime, because Go up to 1.26 can fail a
// clean duration-bounded run with "context deadline exceeded",
// golang/go#75804).
//
// # Retention
//
// Finished tasks (completed, failed, stopped) are deleted with everything
// recorded about them (events, logs, usage, stats, secrets) once they
// finished longer ago than --retention (7 days by default; 0 keeps
// everything), by every coordinator replica, in batches of 500 that skip what
// another replica holds and never touch a live task; orch task delete
// --purge ID deletes one finished task's records at once. The coordinators
// also prune node and task stats older than --stats-retention for every node
// (agents prune their own as they write, but a node that stopped reporting
// prunes nothing), by the database's clock. The counts of finished tasks
// that /metrics serves are kept in a small table, brought up to date every
// 5 s by one replica and corrected by every deletion, so that a scrape reads
// a few index entries, not the whole history (orch bench's retention phase
// times it over a million finished tasks).
//
// # Status page
//
// GET / is a read-only page rendered on the server (no scripts, no external
// assets, reloading itself every 5 s): nodes with bars for reserved and used
// CPU, memory and disk; jobs, when there are any, with their type, version,
// status, task counts and the latest deployment's progress (healthy of
// desired); and the 200 newest tasks with state, node, attempt, age and,
// beside the state, why a failed task failed (exit code and error, or the
// start error) or why a pending one waits. ?state=failed&node=NAME narrows
// the list (a form on the page sets them; a node's name links to its
// tasks). Each task links to its page, GET /ui/tasks/{id}: the spec (image,
// command, resources, restart policy, ports, env, secret names, constraints,
// labels), placement (node, attempt, restarts, container, exit code, error,
// times), the health check and its last result, the last measured usage, the
// events with their reasons, and the last 50 log lines. A task that never
// started has no logs link in the list and its page says why instead of an
// empty log.
//
// A browser logs in with the token as the password of Basic auth (any user
// name), or opens http://orch:TOKEN@HOST:8989/ (see Authentication).
//
// go test ./coordinator -run 'StatusPage|TaskPage' checks the pages, and
// renders the overview in headless Chromium (Debian's chromium, which .ci/run
// installs; package coordinator/browsertest drives it);
// go test ./cmd/orch -run TestCoordinator_StatusPage does it against a real
// coordinator with tokens, an agent on Docker and a task whose image does not
// exist, with the credentials in the URL. Add -artifacts -outputdir DIR to keep
// the screenshots. Without Chromium the browser part is skipped outside CI and
// fails in CI.
//
// # Metrics
//
// GET /metrics serves the Prometheus text format, through the Prometheus Go
// client with its Go runtime and process collectors (go_goroutines,
// process_resident_memory_bytes, ...) beside orch's own:
//
//	orch_tasks{state}, orch_nodes{state}
//	    gauges read from the database at each scrape (the same on every
//	    replica); state="cordoned" counts cordoned nodes
//	orch_schedule_pass_duration_seconds
//	    histogram of this replica's scheduling passes; with
//	    orch_schedule_passes_total{result} (ok or error) and orch_schedule_placed_total
//	orch_api_requests_total{route,method,code}
//	    API requests by route pattern (/tasks/{id}, or unmatched); with the
//	    histogram orch_api_request_duration_seconds{route} (log follows excluded)
//
// The API's /metrics needs a read token like every other GET. For a
// Prometheus that scrapes without credentials, --metrics-listen ADDR (e.g.
// 127.0.0.1:9464) serves GET /metrics, and nothing else, without a token on a
// second address: metrics hold counts and durations, never a task's name,
// spec or secret. Agents serve their own metrics (see package agent).
package coordinator
