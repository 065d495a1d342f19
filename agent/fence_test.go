package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

func TestAgent_LeaseMovedAway_RemovesItsContainerWhileRunning(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{} // one engine, shared by both agents, as in the e2e tests
	a := c.start("a", rt)
	tk := c.create(queue.TaskSpec{Name: "web"})
	got := c.waitState(tk.ID, 10*time.Second, queue.Running)
	if *got.NodeID != a.Node().ID {
		t.Fatalf("placed on %v", got.NodeID)
	}
	c.start("b", rt)
	// The cluster gives node a up while its agent runs on (it was cut off,
	// say): the task moves to b.
	c.declareDown(a, 1)
	c.eventually(10*time.Second, "the task to run on b only", func() bool {
		tk := c.task(tk.ID)
		r := running(t, rt, tk.ID)
		return tk.State == queue.Running && tk.Attempt == 2 && len(r) == 1 && r[tk.NodeID.String()] == 1
	})
	if tk := c.task(tk.ID); tk.Restarts != 0 {
		t.Errorf("a lost node counted as %d restarts", tk.Restarts)
	}
	// The old attempt wrote nothing after it lost its lease.
	for _, e := range events(t, c.store, tk.ID) {
		if e.Attempt == 1 && e.From == queue.Running && e.Reason != "" && !strings.HasPrefix(e.Reason, "lost: node a is down") {
			t.Errorf("attempt 1 wrote %s→%s (%s) after losing its lease", e.From, e.To, e.Reason)
		}
	}
}
