package main

import (
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

// TestE2E_PrivilegedTaskWaitsForAnAgentThatAllowsIt: an admin may ask for a
// privileged container, but an agent started without --allow-privileged
// never gets one; the task waits and says why.
func TestE2E_PrivilegedTaskWaitsForAnAgentThatAllowsIt(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 1})
	tk := createTask(t, c, "--name", "needs-root", "--privileged", "--", "-sleep", "forever")
	var d queue.Task
	c.eventually(20*time.Second, "the reason the privileged task waits", func() bool {
		d = c.task(tk.ID.String()).Task
		return strings.Contains(d.Reason, "not allowing privileged containers")
	})
	if d.State != queue.Pending || !d.Privileged {
		t.Fatalf("privileged task: %s, privileged=%v", d.State, d.Privileged)
	}
	out, code := c.orch("task", "get", tk.ID.String())
	if code != 0 || !strings.Contains(out, "--allow-privileged") {
		t.Errorf("orch task get does not say why (exit %d):\n%s", code, out)
	}
}
