package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestAgent_Drain_HandsTasksToOtherNodes(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{}
	a := c.start("a", rt)
	var ids []uuid.UUID
	for i := 0; i < 4; i++ {
		ids = append(ids, c.create(queue.TaskSpec{RestartPolicy: queue.RestartNever}).ID)
	}
	for _, id := range ids {
		c.waitState(id, 10*time.Second, queue.Running)
	}
	c.start("b", rt)
	if _, err := c.store.DrainNode(c.ctx, "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	c.eventually(15*time.Second, "every task to run on b, and a to be idle", func() bool {
		for _, id := range ids {
			tk := c.task(id)
			if tk.State != queue.Running || *tk.NodeID == a.Node().ID {
				return false
			}
			if r := running(t, rt, id); len(r) != 1 {
				return false
			}
		}
		n, err := c.store.GetNode(c.ctx, "a")
		return err == nil && n.LiveTasks == 0 && n.Draining
	})
	for _, id := range ids {
		tk := c.task(id)
		if tk.Restarts != 0 || tk.Attempt != 2 {
			t.Errorf("task %s: attempt %d restarts %d, want attempt 2 and no restart", id, tk.Attempt, tk.Restarts)
		}
		moved := false
		for _, e := range events(t, c.store, id) {
			moved = moved || (e.From == queue.Running && e.To == queue.Pending && strings.Contains(e.Reason, "draining"))
		}
		if !moved {
			t.Errorf("task %s: no event says it moved off the draining node", id)
		}
	}
}
