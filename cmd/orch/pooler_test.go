package main

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/pgserver"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/postgres/proc"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// TestE2E_DatabasePooler_Transaction_CoreThroughPgBouncer runs the e2e core
// (create, run, logs, stop, node loss) with every orch process connected
// through PgBouncer in transaction mode (--database-pooler transaction):
// the coordinator with a direct URL for its one LISTEN connection, the
// agents with none, hearing of their work by long-polling the coordinator
// (--coordinator). The agents poll the database only every 30 s, so a task
// claimed within seconds was announced through the coordinator.
func TestE2E_DatabasePooler_Transaction_CoreThroughPgBouncer(t *testing.T) {
	t.Parallel()
	direct := pgtest.New(t)
	via := startBouncer(t, direct)
	c := clusterOn(t, direct) // migrated directly: goose holds a session lock
	t.Cleanup(c.shutdown)
	addr := storetest.FreeAddr(t)
	c.start("coordinator-1", "coordinator", "--database-url", via, "--database-pooler", "transaction",
		"--listen-database-url", direct, "--listen", addr, "--no-migrate",
		"--pass-interval", "300ms", "--node-down-timeout", "5s")
	c.addrs = append(c.addrs, "http://"+addr)
	c.waitHealthy(c.addrs[0])
	pooled := []string{"--database-url", via, "--database-pooler", "transaction", "--coordinator", c.addrs[0],
		"--poll-interval", "30s", "--idle-poll-interval", "60s"}
	for i := 0; i < 2; i++ {
		c.startAgent("pooled-"+proc.RandomHex(3), pooled...)
	}
	c.waitNodes(2)
	ctx := context.Background()
	db := storetest.Conn(t, direct)

	// announced fails the test unless the task was claimed well within the
	// agents' 30 s poll: the wake-up came through the coordinator.
	announced := func(d queue.Task, events []queue.Event) {
		t.Helper()
		for _, e := range events {
			if e.To == queue.Starting {
				if wait := e.At.Sub(d.CreatedAt); wait > 15*time.Second {
					t.Errorf("task %s claimed %s after its creation: the agent was not woken", d.Name, wait.Round(time.Millisecond))
				}
				return
			}
		}
		t.Errorf("task %s has no claim event", d.Name)
	}

	t.Run("create, run and logs", func(t *testing.T) {
		tk := createTask(t, c, "--name", "talker", "--", "-logs", "5", "-exit", "0")
		d := c.waitState(tk.ID.String(), 60*time.Second, terminal)
		if d.State != queue.Completed || d.ExitCode == nil || *d.ExitCode != 0 {
			t.Fatalf("task ended %s exit %s (error %q), want completed 0", d.State, exitText(d.ExitCode), d.Error)
		}
		announced(d.Task, d.Events)
		stdout, stderr, code := orchSplit(t, c, "task", "logs", tk.ID.String())
		if want := strings.Join(numbered(1, 5), "\n") + "\n"; code != 0 || stdout != want {
			t.Errorf("orch task logs (exit %d): stdout %q stderr %q, want %q", code, stdout, stderr, want)
		}
	})

	t.Run("stop", func(t *testing.T) {
		out, code := c.orch("task", "create", "--image", c.image, "--name", "sleeper", "--wait", "--", "-sleep", "forever")
		if code != 0 || !strings.Contains(out, "running") {
			t.Fatalf("create --wait (exit %d):\n%s", code, out)
		}
		id := strings.Fields(lastLine(out))[0]
		d := c.task(id)
		announced(d.Task, d.Events)
		start := time.Now()
		if out, code := c.orch("task", "delete", id, "--wait"); code != 0 {
			t.Fatalf("delete --wait (exit %d):\n%s", code, out)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("the stop took %s: the agent was not woken", took.Round(time.Millisecond))
		}
		if d := c.task(id); d.State != queue.Stopped {
			t.Errorf("after delete: %s", d.State)
		}
		c.eventually(20*time.Second, "the container to be removed", func() bool {
			_, err := c.docker.ContainerInspect(ctx, d.ContainerID)
			return cerrdefs.IsNotFound(err)
		})
	})

	t.Run("node loss moves the task to the other node", func(t *testing.T) {
		tk := createTask(t, c, "--name", "survivor", "--", "-sleep", "forever")
		before := c.waitState(tk.ID.String(), 60*time.Second, running)
		c.stop(before.NodeName, true) // kill -9
		var after queue.Task
		c.eventually(60*time.Second, "the task to run on the other node", func() bool {
			got, err := c.store.GetTask(ctx, tk.ID)
			after = got
			return err == nil && got.State == queue.Running && got.NodeID != nil && *got.NodeID != *before.NodeID
		})
		if after.Attempt != before.Attempt+1 {
			t.Errorf("attempt %d after the node loss, want %d", after.Attempt, before.Attempt+1)
		}
		lost, err := c.store.GetNode(ctx, before.NodeName)
		if err != nil || lost.State != queue.NodeDown {
			t.Errorf("the killed agent's node is %s (%v), want down", lost.State, err)
		}
		out, _ := c.orch("node", "get", before.NodeName)
		if !strings.Contains(out, "down") {
			t.Errorf("orch node get of the lost node:\n%s", out)
		}
	})

	// No agent LISTENs: the only listening backend is the coordinator's.
	var listeners []string
	rows, err := db.Query(ctx, `SELECT query FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'listen %'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, q)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(listeners, func(q string) bool { return strings.Contains(q, "orch_node_") }) || len(listeners) > 1 {
		t.Errorf("listening backends: %q, want only the coordinator's", listeners)
	}
	c.mu.Lock()
	for name, log := range c.logs {
		if s := log.String(); strings.Contains(s, "prepared statement") || strings.Contains(s, "SQLSTATE 26000") || strings.Contains(s, "SQLSTATE 42P05") {
			t.Errorf("%s logged a prepared-statement error:\n%s", name, s)
		}
	}
	c.mu.Unlock()
}

// startBouncer starts PgBouncer in transaction mode in front of the
// server of dbURL and returns dbURL's database through it. Without a
// pgbouncer binary the test is skipped, or fails when CI is set.
func startBouncer(t *testing.T, dbURL string) string {
	t.Helper()
	dir := pgtest.ServerDir(t, "orch-e2e-bouncer-")
	b, err := pgserver.StartBouncer(context.Background(), dbURL, pgserver.BouncerOptions{Dir: dir, PoolSize: 4})
	if errors.Is(err, pgserver.ErrNoBouncer) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b.URL()
}
