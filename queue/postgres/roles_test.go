package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orchd/orch/queue"
)

// agentStore connects to the test's database as the agent role of node.
func agentStore(t *testing.T, admin *Store, node string) *Store {
	t.Helper()
	return agentStoreWith(t, admin, node, AgentRoleLimits{})
}

// agentPair makes the agent roles of two fresh nodes, prefix-a-X and
// prefix-b-X (X random), and registers each with capacity through its own
// agent's store.
func agentPair(t *testing.T, admin *Store, prefix string, capacity queue.Resources) (a, b *Store, nodeA, nodeB queue.Node) {
	t.Helper()
	suffix := strings.ToLower(uuid.NewString()[:8])
	stores := make([]*Store, 2)
	nodes := make([]queue.Node, 2)
	for i, ab := range []string{"-a-", "-b-"} {
		name := prefix + ab + suffix
		stores[i] = agentStore(t, admin, name)
		n, err := stores[i].RegisterNode(context.Background(), queue.NodeRegistration{Name: name, Capacity: capacity})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	return stores[0], stores[1], nodes[0], nodes[1]
}

// agentStoreWith is agentStore for a role with limits.
func agentStoreWith(t *testing.T, admin *Store, node string, limits AgentRoleLimits) *Store {
	t.Helper()
	ctx := context.Background()
	role, err := admin.CreateAgentRole(ctx, node, limits)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, role.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: close the connections, then drop the role.
	t.Cleanup(func() { _ = admin.DropAgentRole(context.Background(), node) })
	t.Cleanup(s.Close)
	return s
}

// forbidden reports whether Postgres refused err for the role's privileges
// or a row-level security policy.
func forbidden(err error) bool {
	var pgErr *pgconn.PgError
	return errors.Is(err, queue.ErrForbidden) || (errors.As(err, &pgErr) && pgErr.Code == "42501")
}

func TestAgentRoles_PostgresKeepsEachAgentToItsOwnNode(t *testing.T) {
	admin, ctx := newStore(t)
	suffix := strings.ToLower(uuid.NewString()[:8])
	nameA, nameB := "rls-a-"+suffix, "rls-b-"+suffix
	a, b := agentStore(t, admin, nameA), agentStore(t, admin, nameB)

	cap := queue.Resources{CPUMillis: 4000, MemoryBytes: 4 << 30, DiskBytes: 4 << 30}
	nodeA, err := a.RegisterNode(ctx, queue.NodeRegistration{Name: nameA, Capacity: cap})
	if err != nil {
		t.Fatalf("agent A registers its own node: %v", err)
	}
	nodeB, err := b.RegisterNode(ctx, queue.NodeRegistration{Name: nameB, Capacity: cap})
	if err != nil {
		t.Fatalf("agent B registers its own node: %v", err)
	}
	if _, err := a.RegisterNode(ctx, queue.NodeRegistration{Name: nameB, Capacity: cap}); !forbidden(err) {
		t.Errorf("agent A registering as node B: %v, want refused", err)
	}

	taskA := mustTask(t, admin, queue.Resources{CPUMillis: 100})
	pass(t, admin, onNode(nodeA.ID))
	taskB := mustTask(t, admin, queue.Resources{CPUMillis: 100})
	pass(t, admin, onNode(nodeB.ID))

	// Reading: B's task and node do not exist for A.
	if _, err := a.GetTask(ctx, taskB.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("A reads B's task: %v, want not found", err)
	}
	if _, err := a.GetNode(ctx, nameB); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("A reads B's node: %v, want not found", err)
	}
	if ts, err := a.ListTasks(ctx, TaskFilter{}); err != nil || len(ts) != 1 || ts[0].ID != taskA.ID {
		t.Errorf("A lists tasks: %d tasks, %v; want only its own", len(ts), err)
	}
	if evs, err := a.Events(ctx, taskB.ID); err != nil || len(evs) != 0 {
		t.Errorf("A reads B's events: %d, %v", len(evs), err)
	}

	// Claiming and changing: nothing of B's moves.
	if claim, err := a.Claim(ctx, nodeB.ID, 10); err != nil || len(claim.Tasks) != 0 {
		t.Errorf("A claims B's tasks: %d, %v; want none", len(claim.Tasks), err)
	}
	leaseB := queue.Lease{TaskID: taskB.ID, NodeID: nodeB.ID, Attempt: 1}
	if err := a.MarkRunning(ctx, leaseB, "evil"); err == nil {
		t.Error("A marked B's task running")
	}
	if tag, err := a.pool.Exec(ctx, `UPDATE tasks SET state = 'failed' WHERE id = $1`, taskB.ID); err != nil || tag.RowsAffected() != 0 {
		t.Errorf("A updates B's task directly: %v rows, %v; want 0 rows", tag.RowsAffected(), err)
	}
	_, err = a.pool.Exec(ctx, `INSERT INTO task_events (task_id, to_state, attempt, node_id) VALUES ($1, 'failed', 1, $2)`, taskB.ID, nodeB.ID)
	if !forbidden(err) {
		t.Errorf("A writes an event for B's task: %v, want refused", err)
	}
	_, err = a.pool.Exec(ctx, `UPDATE nodes SET cordoned = false WHERE id = $1`, nodeA.ID)
	if !forbidden(err) {
		t.Errorf("A uncordons itself: %v, want refused", err)
	}
	_, err = a.pool.Exec(ctx, `UPDATE tasks SET image = 'evil:1' WHERE id = $1`, taskA.ID)
	if !forbidden(err) {
		t.Errorf("A changes what its own task runs: %v, want refused", err)
	}
	_, err = a.pool.Exec(ctx, `UPDATE tasks SET node_id = $2 WHERE id = $1`, taskA.ID, nodeB.ID)
	if !forbidden(err) {
		t.Errorf("A hands its task to B: %v, want refused", err)
	}
	_, err = a.pool.Exec(ctx, `INSERT INTO tasks (id, name, image) VALUES ($1, 'x', 'alpine')`, uuid.New())
	if !forbidden(err) {
		t.Errorf("A creates a task: %v, want refused", err)
	}
	var n int
	err = a.pool.QueryRow(ctx, `SELECT count(*) FROM agent_roles`).Scan(&n)
	if !forbidden(err) {
		t.Errorf("A reads the role table: %v, want refused", err)
	}
	if _, err := a.ReportTaskUsage(ctx, nodeB.ID, []queue.TaskUsage{{TaskID: taskB.ID, Attempt: 1, At: time.Now()}}); err == nil {
		if got, _ := admin.TaskUsage(ctx, taskB.ID); got != nil && got.Attempt != 0 {
			t.Errorf("A wrote usage for B's task: %+v", got)
		}
	}

	// Its own work goes through, all the way, as the agent does it.
	claim, err := a.Claim(ctx, nodeA.ID, 10)
	if err != nil || len(claim.Tasks) != 1 || claim.Tasks[0].ID != taskA.ID {
		t.Fatalf("A claims its own task: %+v, %v", claim.Tasks, err)
	}
	leaseA := claim.Tasks[0].Lease()
	if err := a.MarkRunning(ctx, leaseA, "c1"); err != nil {
		t.Fatalf("A marks its task running: %v", err)
	}
	if _, err := a.AppendLogs(ctx, leaseA, []queue.LogLine{{Attempt: 1, At: time.Now(), Stream: queue.Stdout, Text: "hello"}}, queue.DefaultLogLimits); err != nil {
		t.Fatalf("A ships its task's logs: %v", err)
	}
	if err := a.ReportUsage(ctx, nodeA.ID, queue.Usage{CPUPercent: 12}); err != nil {
		t.Fatalf("A reports its node's usage: %v", err)
	}
	if _, err := a.Beat(ctx, nodeA.ID, NodeHealth{}, 2*time.Second); err != nil {
		t.Fatalf("A heartbeats: %v", err)
	}
	if _, err := a.Beat(ctx, nodeA.ID, NodeHealth{Usage: &queue.Usage{CPUPercent: 13}}, 2*time.Second); err != nil {
		t.Fatalf("A heartbeats with its node's usage: %v", err)
	}
	if hist, err := admin.NodeStats(ctx, nodeA.ID, 10); err != nil || len(hist) != 2 || hist[0].CPUPercent != 13 {
		t.Errorf("A's node stats after its beat with usage: %+v, %v; want 2 samples, the newest 13%%", hist, err)
	}
	if _, err := a.Beat(ctx, nodeB.ID, NodeHealth{Usage: &queue.Usage{CPUPercent: 99}}, 2*time.Second); err == nil {
		t.Error("A beat for B's node")
	}
	if hist, err := admin.NodeStats(ctx, nodeB.ID, 10); err != nil || len(hist) != 0 {
		t.Errorf("B's node stats after A beat for it: %+v, %v; want none", hist, err)
	}
	// A restart hands the task back to the queue: the agent may let go.
	if to, err := a.RecordExit(ctx, leaseA, ExitReport{Code: 0}); err != nil || to != queue.Completed {
		t.Fatalf("A records its task's exit: %s, %v", to, err)
	}
	if got, err := admin.GetTask(ctx, taskB.ID); err != nil || got.State != queue.Scheduled {
		t.Errorf("B's task after all that: %s, %v; want untouched (scheduled)", got.State, err)
	}
	page, err := admin.ReadLogs(ctx, taskA.ID, LogQuery{})
	if err != nil || len(page.Lines) != 1 {
		t.Errorf("logs of A's task: %+v, %v", page, err)
	}
}

func TestAgentRoles_RequeueByAgentIsAllowed(t *testing.T) {
	admin, ctx := newStore(t)
	name := "rls-rq-" + strings.ToLower(uuid.NewString()[:8])
	a := agentStore(t, admin, name)
	node, err := a.RegisterNode(ctx, queue.NodeRegistration{Name: name, Capacity: queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	tk := mustTask(t, admin, queue.Resources{CPUMillis: 100})
	pass(t, admin, onNode(node.ID))
	claim, err := a.Claim(ctx, node.ID, 1)
	if err != nil || len(claim.Tasks) != 1 {
		t.Fatalf("claim: %v", err)
	}
	if err := a.Requeue(ctx, claim.Tasks[0].Lease(), "engine down"); err != nil {
		t.Fatalf("an agent hands its task back: %v", err)
	}
	got, err := admin.GetTask(ctx, tk.ID)
	if err != nil || got.State != queue.Pending || got.NodeID != nil {
		t.Fatalf("after requeue: %s on %v, %v", got.State, got.NodeID, err)
	}
}

// A compromised node's role, knowing another node's task id, tries what the
// review found it could do: forge an event to open the task, read its env,
// secrets and logs, rewrite or delete the logs, and advertise more room or
// privileges than it was given. PostgreSQL refuses all of it.
func TestAgentRoles_NoNodeReachesAnotherNodesTask(t *testing.T) {
	admin, ctx := newStore(t)
	suffix := strings.ToLower(uuid.NewString()[:8])
	nameA, nameB := "iso-a-"+suffix, "iso-b-"+suffix
	a := agentStoreWith(t, admin, nameA, AgentRoleLimits{Capacity: queue.Resources{CPUMillis: 4000}})
	b := agentStore(t, admin, nameB)
	cap := queue.Resources{CPUMillis: 4000, MemoryBytes: 4 << 30, DiskBytes: 4 << 30}
	nodeA, err := a.RegisterNode(ctx, queue.NodeRegistration{Name: nameA, Capacity: cap})
	if err != nil {
		t.Fatal(err)
	}
	nodeB, err := b.RegisterNode(ctx, queue.NodeRegistration{Name: nameB, Capacity: cap})
	if err != nil {
		t.Fatal(err)
	}

	// B runs a task with an env value, a secret and some output.
	spec := queue.TaskSpec{Image: "app:1", Env: map[string]string{"DB_HOST": "db.internal"},
		Secrets: map[string]string{"DB_PASSWORD": "hunter2-xyz"}}
	spec.Normalize()
	taskB, err := admin.CreateTask(ctx, uuid.Nil, spec, CreateOpts{SealedSecrets: []byte("sealed-bytes")})
	if err != nil {
		t.Fatal(err)
	}
	pass(t, admin, onNode(nodeB.ID))
	claim, err := b.Claim(ctx, nodeB.ID, 1)
	if err != nil || len(claim.Tasks) != 1 {
		t.Fatalf("B claims: %v", err)
	}
	leaseB := claim.Tasks[0].Lease()
	if err := b.MarkRunning(ctx, leaseB, "cB"); err != nil {
		t.Fatal(err)
	}
	if sealed, err := b.TaskSecrets(ctx, leaseB); err != nil || string(sealed) != "sealed-bytes" {
		t.Fatalf("B reads its task's sealed secrets: %q, %v", sealed, err)
	}
	if _, err := b.AppendLogs(ctx, leaseB, []queue.LogLine{{Attempt: 1, At: time.Now(), Stream: queue.Stdout, Text: "b says hi"}}, queue.DefaultLogLimits); err != nil {
		t.Fatal(err)
	}

	// The forged event that opened everything before.
	_, err = a.pool.Exec(ctx, `INSERT INTO task_events (task_id, to_state, attempt, node_id) VALUES ($1, 'running', 1, $2)`, taskB.ID, nodeA.ID)
	if !forbidden(err) {
		t.Errorf("A forges an event naming itself for B's task: %v, want refused", err)
	}
	var n int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE id = $1`, taskB.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("A sees B's task (its env): %d rows, %v", n, err)
	}
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM task_secrets`).Scan(&n); err != nil || n != 0 {
		t.Errorf("A sees sealed secrets: %d rows, %v", n, err)
	}
	if _, err := a.TaskSecrets(ctx, leaseB); err == nil {
		t.Error("A read B's task's secrets")
	}
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM task_logs WHERE task_id = $1`, taskB.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("A sees B's logs: %d rows, %v", n, err)
	}
	if tag, err := a.pool.Exec(ctx, `DELETE FROM task_logs WHERE task_id = $1`, taskB.ID); err != nil || tag.RowsAffected() != 0 {
		t.Errorf("A deletes B's logs: %d rows, %v", tag.RowsAffected(), err)
	}
	_, err = a.pool.Exec(ctx, `INSERT INTO task_logs (task_id, attempt, at, stream, line) VALUES ($1, 1, now(), 'stdout', 'forged')`, taskB.ID)
	if !forbidden(err) {
		t.Errorf("A forges a log line of B's task: %v, want refused", err)
	}
	_, err = a.pool.Exec(ctx, `INSERT INTO task_usage (task_id, attempt, node_id, at, cpu_percent, memory_used_bytes, memory_limit_bytes)
VALUES ($1, 1, $2, now(), 99, 1, 1)`, taskB.ID, nodeA.ID)
	if !forbidden(err) {
		t.Errorf("A forges usage of B's task: %v, want refused", err)
	}

	// B's task is as B left it.
	got, err := admin.GetTask(ctx, taskB.ID)
	if err != nil || got.State != queue.Running || got.Env["DB_HOST"] != "db.internal" || len(got.SecretKeys) != 1 {
		t.Errorf("B's task after A's attempts: %s %v %v, %v", got.State, got.Env, got.SecretKeys, err)
	}
	page, err := admin.ReadLogs(ctx, taskB.ID, LogQuery{})
	if err != nil || len(page.Lines) != 1 || page.Lines[0].Text != "b says hi" {
		t.Errorf("B's logs after A's attempts: %+v, %v", page.Lines, err)
	}
	if evs, _ := admin.Events(ctx, taskB.ID); len(evs) != 4 { // created, scheduled, starting, running
		t.Errorf("B's task has %d events, want 4 (none forged)", len(evs))
	}

	// A's own node: no more room, no privileges, no reservations of its own making.
	for _, q := range []string{
		`UPDATE nodes SET cpu_millis = 1000000 WHERE id = $1`,
		`UPDATE nodes SET memory_bytes = 1 << 50 WHERE id = $1`,
		`UPDATE nodes SET labels = '{"orch.allow-privileged": "true"}' WHERE id = $1`,
		`INSERT INTO nodes (id, name, cpu_millis, memory_bytes, disk_bytes) VALUES (gen_random_uuid(), 'x', 1, 1, 1)`,
		`DELETE FROM node_ports WHERE node_id = $1`,
	} {
		var err error
		if strings.Contains(q, "$1") {
			_, err = a.pool.Exec(ctx, q, nodeA.ID)
		} else {
			_, err = a.pool.Exec(ctx, q)
		}
		if !forbidden(err) {
			t.Errorf("A: %s: %v, want refused", q, err)
		}
	}
	// Registering again with more room and a privilege label: bounded.
	big := queue.Resources{CPUMillis: 64000, MemoryBytes: 1 << 40, DiskBytes: 1 << 40}
	again, err := a.RegisterNode(ctx, queue.NodeRegistration{Name: nameA, Capacity: big, AllowPrivileged: true,
		Labels: map[string]string{"zone": "eu", queue.LabelAllowPrivileged: "true", "orch.node.name": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Capacity != cap {
		t.Errorf("A re-registered with %+v; its role allows %+v", again.Capacity, cap)
	}
	if again.Labels["zone"] != "eu" || len(again.Labels) != 1 {
		t.Errorf("A's labels %v, want only zone=eu (orch.* labels are the cluster's)", again.Labels)
	}
	// A finished task of A's own node is history: A cannot revive it.
	tkA := mustTask(t, admin, queue.Resources{CPUMillis: 100})
	pass(t, admin, onNode(nodeA.ID))
	ca, err := a.Claim(ctx, nodeA.ID, 1)
	if err != nil || len(ca.Tasks) != 1 {
		t.Fatalf("A claims: %v", err)
	}
	if _, err := a.RecordExit(ctx, ca.Tasks[0].Lease(), ExitReport{StartFailed: true, Error: "no"}); err != nil {
		t.Fatal(err)
	}
	if tag, err := a.pool.Exec(ctx, `UPDATE tasks SET state = 'scheduled' WHERE id = $1`, tkA.ID); err != nil || tag.RowsAffected() != 0 {
		t.Errorf("A revives its finished task: %d rows, %v", tag.RowsAffected(), err)
	}
	if n, err := admin.GetNode(ctx, nameA); err != nil || n.Reserved != (queue.Resources{}) {
		t.Errorf("A's reservations after its task ended: %+v, %v", n.Reserved, err)
	}
}

// Privileges are the admin's to grant: an agent asking alone gets none.
func TestAgentRoles_PrivilegedLabelOnlyWhenTheAdminAllows(t *testing.T) {
	admin, ctx := newStore(t)
	suffix := strings.ToLower(uuid.NewString()[:8])
	cap := queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30}
	for _, tc := range []struct {
		admin, agent, want bool
	}{{false, true, false}, {true, false, false}, {true, true, true}} {
		name := fmt.Sprintf("priv-%t-%t-%s", tc.admin, tc.agent, suffix)
		s := agentStoreWith(t, admin, name, AgentRoleLimits{AllowPrivileged: tc.admin})
		n, err := s.RegisterNode(ctx, queue.NodeRegistration{Name: name, Capacity: cap, AllowPrivileged: tc.agent})
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Labels[queue.LabelAllowPrivileged] == "true"; got != tc.want {
			t.Errorf("admin allows %t, agent asks %t: privileged %t, want %t", tc.admin, tc.agent, got, tc.want)
		}
	}
	// The owner (orch dev, no per-node roles) is trusted.
	n, err := admin.RegisterNode(ctx, queue.NodeRegistration{Name: "owner-" + suffix, Capacity: cap, AllowPrivileged: true})
	if err != nil || n.Labels[queue.LabelAllowPrivileged] != "true" {
		t.Errorf("the owner's agent asking for privileges: %v, %v", n.Labels, err)
	}
}

func TestStore_CreateAgentRole_URLKeepsEveryHostAndTargetSessionAttrs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, err := url.Parse(newURL(t))
	if err != nil {
		t.Fatal(err)
	}
	// A second host that answers nothing: a standby's place in the list.
	u.Host += ",127.0.0.1:1"
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	u.RawQuery = q.Encode()
	admin := openStore(t, u.String())
	node := "multi-" + strings.ToLower(uuid.NewString()[:8])
	role, err := admin.CreateAgentRole(ctx, node, AgentRoleLimits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.DropAgentRole(context.Background(), node) })
	got, err := url.Parse(role.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(u.Host, ",")
	if got.Host != first+",127.0.0.1:1" || got.Query().Get("target_session_attrs") != "read-write" {
		t.Errorf("agent URL hosts %q, target_session_attrs %q; want %q and read-write", got.Host, got.Query().Get("target_session_attrs"), u.Host)
	}
	s := openStore(t, role.DatabaseURL)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("the agent's URL: %v", err)
	}
}

func TestAgentRoles_HostMountsLabelOnlyWhenTheAdminAllowsPrivileges(t *testing.T) {
	admin, ctx := newStore(t)
	suffix := strings.ToLower(uuid.NewString()[:8])
	cap := queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30}
	asks := map[string]string{queue.LabelAllowHostMounts: "true", "orch.other": "x"}
	for _, allowed := range []bool{false, true} {
		name := fmt.Sprintf("mounts-%t-%s", allowed, suffix)
		s := agentStoreWith(t, admin, name, AgentRoleLimits{AllowPrivileged: allowed})
		n, err := s.RegisterNode(ctx, queue.NodeRegistration{Name: name, Capacity: cap, Labels: asks})
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Labels[queue.LabelAllowHostMounts] == "true"; got != allowed {
			t.Errorf("admin allows privileges %t: host mounts label %t", allowed, got)
		}
		if _, ok := n.Labels["orch.other"]; ok {
			t.Errorf("admin allows privileges %t: an agent role set orch.other", allowed)
		}
	}
}

func TestAgentRoles_VolumesOfTheirOwnNodeOnly(t *testing.T) {
	admin, ctx := newStore(t)
	a, b, nodeA, nodeB := agentPair(t, admin, "vols", queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30})
	if err := a.ReportVolumes(ctx, nodeA.ID, []string{"a-data"}); err != nil {
		t.Fatalf("agent A reports its own volume: %v", err)
	}
	if err := a.ReportVolumes(ctx, nodeB.ID, []string{"planted"}); !forbidden(err) {
		t.Errorf("agent A reports a volume on node B: %v, want refused", err)
	}
	if err := b.ReportVolumes(ctx, nodeB.ID, []string{"a-data"}); err != nil {
		t.Errorf("agent B reporting a name A holds: %v, want it ignored", err)
	}
	if _, err := admin.RequestVolumeDelete(ctx, "a-data"); err != nil {
		t.Fatal(err)
	}
	if names, err := b.VolumeDeletes(ctx, nodeA.ID); err != nil || len(names) != 0 {
		t.Errorf("agent B reads A's deletions: %v, %v; want none", names, err)
	}
	if err := b.VolumeRemoved(ctx, nodeA.ID, "a-data", nil); err != nil {
		t.Fatal(err)
	}
	vs, err := admin.ListVolumes(ctx)
	if err != nil || len(vs) != 1 || vs[0].NodeID != nodeA.ID {
		t.Fatalf("after B tried to remove A's volume: %+v, %v; want it on A", vs, err)
	}
	names, err := a.VolumeDeletes(ctx, nodeA.ID)
	if err != nil || len(names) != 1 {
		t.Fatalf("agent A's deletions: %v, %v", names, err)
	}
	if err := a.VolumeRemoved(ctx, nodeA.ID, "a-data", nil); err != nil {
		t.Fatal(err)
	}
	if vs, _ := admin.ListVolumes(ctx); len(vs) != 0 {
		t.Errorf("after A removed it: %+v", vs)
	}
}
