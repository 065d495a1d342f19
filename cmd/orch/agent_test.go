package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/uuid"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/proc"
)

func TestE2E_AgentKilledAndRestarted_ReadoptsContainers_RecordsExits(t *testing.T) {
	t.Parallel()
	// A long node-down timeout: the agent is back long before anyone gives up on it.
	c := newCluster(t, clusterOpts{coordinators: 1, coordArgs: []string{"--node-down-timeout", "60s"}})
	node := "e2e-readopt-" + proc.RandomHex(3)
	c.startAgent(node)
	c.waitNodes(1)
	long1 := createTask(t, c, "--name", "long1", "--", "-sleep", "forever")
	long2 := createTask(t, c, "--name", "long2", "--", "-sleep", "forever")
	short := createTask(t, c, "--name", "short", "--", "-sleep", "4s", "-exit", "7")
	before := map[string]coordinator.TaskDetail{}
	for _, tk := range []queue.Task{long1, long2, short} {
		before[tk.ID.String()] = c.waitState(tk.ID.String(), 60*time.Second, running)
	}
	n, err := c.store.GetNode(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}

	c.stop(node, true) // kill -9
	// While it is away: an orch container of this node for a task that is
	// not its own, and a container that is none of orch's business.
	foreign := runWorkload(t, c, "orch-stale-"+proc.RandomHex(4), map[string]string{
		agent.LabelTask: uuid.NewString(), agent.LabelNode: n.ID.String(), agent.LabelAttempt: "1"})
	bystander := runWorkload(t, c, "bystander-"+proc.RandomHex(4), map[string]string{"e2e.bystander": "1"})
	c.eventually(30*time.Second, "the short task's container to exit while the agent is down", func() bool {
		info, err := c.docker.ContainerInspect(context.Background(), before[short.ID.String()].ContainerID)
		return err == nil && !info.State.Running
	})

	c.startAgent(node)
	d := c.waitState(short.ID.String(), 30*time.Second, terminal)
	if d.State != queue.Failed || d.ExitCode == nil || *d.ExitCode != 7 {
		t.Errorf("the exit while the agent was down was recorded as %s exit %v, want failed 7", d.State, d.ExitCode)
	}
	c.eventually(30*time.Second, "the foreign orch container to be removed", func() bool {
		_, err := c.docker.ContainerInspect(context.Background(), foreign)
		return cerrdefs.IsNotFound(err)
	})
	if info, err := c.docker.ContainerInspect(context.Background(), bystander); err != nil || !info.State.Running {
		t.Errorf("the container without orch labels was touched: %v", err)
	}
	time.Sleep(2 * time.Second) // a few agent steps
	live := liveContainers(t, c, map[string]bool{n.ID.String(): true})
	for _, tk := range []queue.Task{long1, long2} {
		now := c.task(tk.ID.String())
		was := before[tk.ID.String()]
		if now.State != queue.Running || now.Attempt != was.Attempt || now.ContainerID != was.ContainerID {
			t.Errorf("%s after the agent restart: %s attempt %d container %.12s; want the same attempt %d and container %.12s",
				now.Name, now.State, now.Attempt, now.ContainerID, was.Attempt, was.ContainerID)
		}
		if got := live[tk.ID.String()]; len(got) != 1 {
			t.Errorf("%s has %d running containers, want 1", now.Name, len(got))
		}
	}
}

// TestE2E_AgentWithItsOwnDatabaseRole runs an agent process that connects
// with the role `orch node token` made for its node: it runs a task through
// Docker like any agent, and the same role cannot register as another node.
func TestE2E_AgentWithItsOwnDatabaseRole(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 0})
	name := "e2e-role-" + proc.RandomHex(4)
	var role postgres.AgentRole
	c.orchJSON(&role, "node", "token", name, "--database-url", c.db)
	if role.Role == "" || !strings.Contains(role.DatabaseURL, role.Role) {
		t.Fatalf("node token: %+v", role)
	}
	t.Cleanup(func() { _, _ = c.orch("node", "token", name, "--revoke", "--database-url", c.db) })

	c.startAgent(name, "--database-url", role.DatabaseURL)
	c.waitNodes(1)
	tk := createTask(t, c, "--name", "as-role", "--", "-logs", "2", "-exit", "0")
	d := c.waitState(tk.ID.String(), 60*time.Second, terminal)
	if d.State != queue.Completed || d.NodeName != name {
		t.Fatalf("task ended %s on %q: %s", d.State, d.NodeName, d.Error)
	}
	c.eventually(10*time.Second, "the task's logs", func() bool {
		page, err := c.store.ReadLogs(context.Background(), tk.ID, postgres.LogQuery{})
		return err == nil && len(page.Lines) == 2
	})

	// The role is this node's only: as another node the agent stops at once
	// with a message naming the fix.
	cmd := exec.Command(orchBin, "agent", "--database-url", role.DatabaseURL, "--name", name+"-other")
	cmd.Env = c.env()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 || !strings.Contains(string(out), "orch node token "+name+"-other") {
		t.Fatalf("agent as another node: %v\n%s", err, out)
	}
}
