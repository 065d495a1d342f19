package agent

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestAgent_Restart_AdoptsContainers_RecordsExits_RemovesForeignOnes(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{Behave: func(spec ContainerSpec) (time.Duration, int) {
		if spec.Labels[LabelName] == "short" {
			return 700 * time.Millisecond, 7
		}
		return 0, 0
	}}
	a := c.start("a", rt)
	long := c.create(queue.TaskSpec{Name: "long"})
	short := c.create(queue.TaskSpec{Name: "short", RestartPolicy: queue.RestartNever})
	longRun := c.waitState(long.ID, 10*time.Second, queue.Running)
	c.waitState(short.ID, 10*time.Second, queue.Running)
	node := a.Node().ID.String()
	c.stop(a) // the agent dies; its containers run on

	// Meanwhile: a container with this node's labels for a task it does not
	// own, and one without orch labels.
	foreign, err := rt.Start(c.ctx, ContainerSpec{Name: "stale", Labels: map[string]string{
		LabelTask: uuid.NewString(), LabelNode: node, LabelAttempt: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	bystander, err := rt.Start(c.ctx, ContainerSpec{Name: "not-orch", Labels: map[string]string{"app": "other"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the short task exits while no agent watches

	c.start("a", rt)
	got := c.waitState(short.ID, 10*time.Second, queue.Failed)
	if got.ExitCode == nil || *got.ExitCode != 7 {
		t.Errorf("exit while the agent was away recorded as %v, want 7", got.ExitCode)
	}
	c.eventually(10*time.Second, "the foreign container to be removed", func() bool {
		cs, _ := rt.List(c.ctx, map[string]string{LabelNode: node})
		for _, x := range cs {
			if x.ID == foreign {
				return false
			}
		}
		return true
	})
	if cs, _ := rt.List(c.ctx, map[string]string{"app": "other"}); len(cs) != 1 || cs[0].ID != bystander || !cs[0].Running {
		t.Errorf("the container without orch labels was touched: %+v", cs)
	}
	time.Sleep(300 * time.Millisecond)
	if now := c.task(long.ID); now.State != queue.Running || now.Attempt != 1 || now.ContainerID != longRun.ContainerID {
		t.Errorf("long task after the agent restart: %s attempt %d container %s, want the same container adopted", now.State, now.Attempt, now.ContainerID)
	}
	if r := running(t, rt, long.ID); len(r) != 1 || r[node] != 1 {
		t.Errorf("long task runs %v, want once on a", r)
	}
}
