package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgserver"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/postgres/proc"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// The failover test: a primary with a synchronous standby, made by the test
// from the host's PostgreSQL binaries; two coordinator processes and four
// agent processes (the memory runtime: the real agent code, no engine)
// given the multi-host URL of both servers with
// target_session_attrs=read-write; 500 tasks in flight and creates running
// through the API when the primary is killed (kill -9) and, seven seconds
// later, the standby promoted, as a failover manager would (the pause is
// longer than the node-down timeout: the nodes' silence is the database's).
// Afterwards
//
//   - every task the API acknowledged, before or during the switch, exists
//     and ran exactly once (completed, attempt 1, one start);
//   - no node was declared down, nor did any change state after the kill;
//   - every orch process still runs;
//   - no create failed, nor did the client have to send one again.
const (
	failoverTasks     = 500
	failoverAgents    = 4
	failoverNodeDown  = 5 * time.Second
	failoverPause     = 7 * time.Second // the failover manager's reaction time: longer than the node-down timeout, on purpose
	failoverAfterward = 100             // creates acknowledged after the promotion before the test stops creating
)

func TestCoordinatorAndAgents_PrimaryKilledStandbyPromoted_NothingLostNothingDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL servers and six orch processes")
	}
	ctx := context.Background()
	primary, standby := replicatedServers(t)
	url := fmt.Sprintf("postgres://%s@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write",
		pgserver.User, primary.Port(), standby.Port())

	c := &cluster{t: t, db: url, home: t.TempDir(), procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{}}
	c.store = storetest.Open(t, url)
	t.Cleanup(c.shutdown)
	var clients []*coordinator.Client
	var retried atomic.Int64
	for i := 0; i < 2; i++ {
		addr := storetest.FreeAddr(t)
		c.start(fmt.Sprintf("coordinator-%d", i+1), "coordinator", "--database-url", url, "--listen", addr, "--no-migrate",
			"--pass-interval", "300ms", "--node-down-timeout", failoverNodeDown.String())
		c.addrs = append(c.addrs, "http://"+addr)
	}
	for _, a := range c.addrs {
		c.waitHealthy(a)
		cl, err := coordinator.NewClient(a, "")
		if err != nil {
			t.Fatal(err)
		}
		// The client would try a create again on an error; count those
		// tries: the coordinators themselves must ride out the switch.
		cl.RetryCreates(coordinator.DefaultCreateRetry, func(error, time.Duration) { retried.Add(1) })
		clients = append(clients, cl)
	}
	prefix := "failover-" + proc.RandomHex(3)
	for i := 0; i < failoverAgents; i++ {
		c.startAgent(fmt.Sprintf("%s-%d", prefix, i+1), "--runtime", "memory", "--cpu", "8", "--memory", "16GiB")
	}
	c.waitNodes(failoverAgents)

	var (
		mu         sync.Mutex
		accepted   = map[uuid.UUID]bool{}
		createErrs []error
		n          atomic.Int64
		slowest    time.Duration
	)
	create := func(sleep string) {
		i := n.Add(1)
		cpu, mem := coordinator.Quantity("10m"), coordinator.Quantity("16MiB")
		// The client chooses the id, so that a create may be repeated.
		id := uuid.Must(uuid.NewV7())
		req := coordinator.TaskRequest{ID: id.String(), Name: fmt.Sprintf("fo-%04d", i), Image: "workload",
			Command: []string{"-sleep", sleep}, CPU: &cpu, Memory: &mem, RestartPolicy: queue.RestartNever}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		began := time.Now()
		tk, err := clients[int(i)%len(clients)].CreateTask(cctx, req)
		mu.Lock()
		defer mu.Unlock()
		slowest = max(slowest, time.Since(began))
		if err != nil {
			createErrs = append(createErrs, err)
			return
		}
		accepted[tk.ID] = true
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(accepted) }

	// 500 tasks in flight: running for a while yet when the primary dies.
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				create("40s")
			}
		}()
	}
	for i := 0; i < failoverTasks; i++ {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	c.eventually(3*time.Minute, "500 tasks running", func() bool {
		ts, err := c.store.ListTasks(ctx, postgres.TaskFilter{States: []queue.State{queue.Running}})
		return err == nil && len(ts) >= failoverTasks
	})

	// Creates keep coming through the switch.
	var stop atomic.Bool
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				create("3s")
			}
		}()
	}
	for count() < failoverTasks+50 {
		time.Sleep(20 * time.Millisecond)
	}
	// Each node's last state change before the kill: none may follow it.
	nodes, err := c.store.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changed := map[uuid.UUID]time.Time{}
	for _, n := range nodes {
		changed[n.ID] = n.StateChangedAt
	}
	killed := time.Now()
	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(failoverPause)
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	atPromotion := count()
	for count() < atPromotion+failoverAfterward {
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("primary killed; standby promoted %.1fs later; %d creates acknowledged in all, %d before the promotion; the slowest took %.1fs",
		promoted.Sub(killed).Seconds(), count(), atPromotion, slowest.Seconds())

	c.eventually(3*time.Minute, "every acknowledged task completed", func() bool {
		ts, err := c.store.ListTasks(ctx, postgres.TaskFilter{States: []queue.State{queue.Pending, queue.Scheduled, queue.Starting, queue.Running}})
		return err == nil && len(ts) == 0
	})

	if len(createErrs) > 0 || retried.Load() > 0 {
		t.Errorf("%d creates failed, %d tries were answered with an error and sent again; the first failure: %v",
			len(createErrs), retried.Load(), append(createErrs, nil)[0])
	}
	conn, err := pgx.Connect(ctx, standby.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT t.id, t.state, t.attempt, t.restarts, COALESCE(t.exit_code, -1),
    (SELECT count(*) FROM task_events e WHERE e.task_id = t.id AND e.to_state = 'running')
FROM tasks t`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]bool{}
	bad := 0
	for rows.Next() {
		var id uuid.UUID
		var state string
		var attempt, restarts, exit, starts int
		if err := rows.Scan(&id, &state, &attempt, &restarts, &exit, &starts); err != nil {
			t.Fatal(err)
		}
		seen[id] = true
		if accepted[id] && (state != string(queue.Completed) || attempt != 1 || restarts != 0 || exit != 0 || starts != 1) {
			if bad++; bad <= 5 {
				t.Errorf("task %s: %s, attempt %d, restarts %d, exit %d, started %d times; want completed once", id, state, attempt, restarts, exit, starts)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for id := range accepted {
		if !seen[id] {
			lost++
		}
	}
	if lost > 0 || bad > 0 {
		t.Errorf("of %d acknowledged tasks: %d missing after the failover, %d did not run exactly once", len(accepted), lost, bad)
	}
	var down, lostEvents int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM task_events WHERE reason LIKE 'lost:%'`).Scan(&lostEvents); err != nil {
		t.Fatal(err)
	}
	after, err := c.store.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range after {
		if n.State != queue.NodeReady || !n.StateChangedAt.Equal(changed[n.ID]) {
			down++
		}
	}
	if down > 0 || lostEvents > 0 {
		t.Errorf("nodes declared down or changed state: %d; tasks lost with a node: %d", down, lostEvents)
		explainNodes(t, conn, killed)
	}
	c.mu.Lock()
	for name, cmd := range c.procs {
		if !alive(cmd.Process.Pid) {
			t.Errorf("%s exited during the failover:\n%s", name, c.logs[name].String())
		}
	}
	c.mu.Unlock()
}

// replicatedServers starts a primary and a synchronous hot standby of it,
// private to the test, with orch's schema, and stops them when it ends.
func replicatedServers(t *testing.T) (primary, standby *pgserver.Server) {
	t.Helper()
	ctx := context.Background()
	dir := pgtest.ServerDir(t, "orch-failover-")
	// Fast, but commits wait for the standby: durability is the pair's.
	var err error
	primary, err = pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(dir, "primary"), Fast: true,
		Settings: map[string]string{"synchronous_commit": "on"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	if out, code := (&cluster{t: t, home: t.TempDir()}).orch("migrate", "up", "--database-url", primary.URL()); code != 0 {
		t.Fatalf("migrate up: exit %d: %s", code, out)
	}
	standby, err = pgserver.StartStandby(ctx, primary, pgserver.StandbyOptions{DataDir: filepath.Join(dir, "standby"), Name: "standby1", Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Stop(context.Background()) })
	conn, err := pgx.Connect(ctx, primary.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{`ALTER SYSTEM SET synchronous_standby_names = 'standby1'`, `SELECT pg_reload_conf()`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return primary, standby
}

// explainNodes logs, for a failed run, each node's state and last beat and
// the database epochs the sweep counted silence from, relative to the kill.
func explainNodes(t *testing.T, conn *pgx.Conn, killed time.Time) {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT 'node ' || name || ': ' || state || ', last beat ' || round(extract(epoch FROM last_heartbeat - $1::timestamptz)::numeric, 2)
    || 's after the kill, state changed ' || round(extract(epoch FROM state_changed_at - $1::timestamptz)::numeric, 2) || 's after'
FROM nodes
UNION ALL
SELECT 'epoch: server started ' || round(extract(epoch FROM started_at - $1::timestamptz)::numeric, 2) || 's after the kill, timeline '
    || timeline || ', counted from ' || round(extract(epoch FROM seen_at - $1::timestamptz)::numeric, 2) || 's after'
FROM db_epochs`, killed)
	if err != nil {
		t.Log(err)
		return
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Log(err)
		return
	}
	t.Log(strings.Join(lines, "\n"))
}

// alive tells whether a process runs (a zombie, exited and not yet waited
// for, does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
