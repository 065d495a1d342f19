// Package scheduler is orch's placement logic and nothing else: given pending
// tasks and a snapshot of nodes, it filters the nodes that can take each task,
// scores them with a strategy and picks the best, or says why none fits. It
// does no I/O; the coordinator feeds it and commits its plan.
//
// Every coordinator replica runs scheduling passes (see package coordinator
// for when). A pass is one transaction over a batch of pending tasks (--batch,
// 500): the store reads the nodes and the host ports in use, this package
// plans in memory, and the store commits the plan under guards that keep a
// node from ever being oversubscribed, whatever number of replicas race (see
// package queue/postgres).
//
// # Filters
//
// A node can take a task when
//
//   - it is ready (its heartbeat is younger than the silence it is allowed:
//     --node-down-timeout, for up to 100 nodes) and not cordoned;
//   - its free CPU, memory and disk (capacity minus what its live tasks
//     reserved, minus what this pass has already placed there) each cover the
//     request;
//   - every host port the task publishes (--port 8080:80, per protocol) is
//     free on it;
//   - its labels (orch agent --label zone=eu) match every constraint of the
//     task: --constraint zone=eu needs the label with that value,
//     --constraint gpu!=none refuses that value (a node without the label
//     matches);
//   - for a privileged or host-network task, its agent allows them (the node
//     label orch.allow-privileged=true).
//
// # Strategies
//
// Strategies score the nodes that pass the filters; the coordinator's
// --strategy is the default and a task's --strategy (or "strategy" in the
// API) overrides it. Ties go to the node whose name sorts first.
//
//   - binpack (the default) picks the fullest node that still fits (best
//     fit): the highest mean of (capacity − free + request) / capacity over
//     CPU, memory and disk, leaving whole nodes free for large tasks.
//   - spread picks the least allocated node: the same mean, lowest.
//   - epvm picks the node where the task adds the least E-PVM cost (below).
//   - round-robin picks the next node that fits after the one chosen last,
//     in node-id order. The cursor is a row in scheduler_cursor, so every
//     replica continues one walk.
//
// epvm is the opportunity-cost strategy of E-PVM (the seed's book, Build an
// Orchestrator in Go, uses it with Lieb's square-ice constant L = (4/3)^(3/2)
// ≈ 1.5396). The cost of a dimension grows exponentially with its
// utilisation, and a task goes where it adds the least:
//
//	cost(task, node) = Σ over r in {cpu, memory, disk}:  L^(u_r + t_r/C_r) − L^(u_r)
//
//	u_cpu  = (max(reserved_cpu, busy × C_cpu) + placed_cpu) / C_cpu,   busy = min(1, max(cpu_percent/100, load1/cores))
//	u_mem  = (max(reserved_mem, memory_used) + placed_mem) / C_mem
//	u_disk = (max(reserved_disk, disk_used) + placed_disk) / C_disk
//
// C is the node's capacity, t the task's request, reserved what its live tasks
// reserved, cpu_percent, load1, memory_used and disk_used the node's latest
// measured usage (0 when never measured), and placed what the same pass has
// already put there. Taking the larger of reservation and measurement makes a
// node busy with work orch did not reserve look as full as it is. The book's
// version computes its CPU term as L^load + L^((k+1)/m) − L^load − L^(k/m),
// in which the load cancels, so CPU never changes its choice; orch's CPU term
// is the marginal cost of the task's CPU on top of the node's measured load
// (a test shows the two picking different nodes). The book's task-count term
// (k of an assumed m = 4 tasks) is left out: orch reserves real requests.
//
// # Why a task waits
//
// A task no node can take stays pending with a reason, in the API (reason)
// and in orch task get ("waiting because"), counting the nodes each filter
// turned away, the most common first:
//
//	no node fits: 3 short of memory (needs 4GiB), 1 cordoned
//	no node fits: 1 down, 1 not matching zone=eu, 1 with host port 443/tcp taken
//
// It is tried again by later passes and placed as soon as something fits.
// Each time no node fits a task it moves to the back of the queue (queued_at),
// so tasks that fit nowhere cannot starve those behind them (the price: a
// large task can be overtaken by smaller ones while it waits). A task whose
// placement a pass could not commit (another replica took the room
// meanwhile) and could not re-plan either waits for the next pass with the
// reason "the chosen node was taken by another placement meanwhile;
// retrying".
//
// # Measuring it
//
// Planning alone, in-process, for 1,000 nodes and 100,000 pending tasks of
// mixed sizes (0.1–2 cores, 64 MiB–4 GiB, one in ten with a zone=eu
// constraint), in passes of 500:
//
//	go test ./scheduler -run '^$' -bench Plan -benchtime 1x
//
// The same placements through PostgreSQL are measured by BenchmarkSchedulePass
// in package queue/postgres, and end to end by orch bench (package
// cmd/orch/bench), whose target is at least 5,000 placements a second.
package scheduler
