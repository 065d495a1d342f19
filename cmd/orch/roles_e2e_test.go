package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/proc"
)

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
