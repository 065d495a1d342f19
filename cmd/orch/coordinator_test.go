package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

func TestE2E_TwoCoordinatorsTwoAgents_EveryTaskRunsExactlyOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 2, agents: 2, coordArgs: []string{"--strategy", "spread"}})
	ctx := context.Background()
	const n = 50
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		// Alternate replicas: either may take any request.
		client, err := coordinator.NewClient(c.addrs[i%2], "")
		if err != nil {
			t.Fatal(err)
		}
		cpu := coordinator.Quantity("100m")
		tk, err := client.CreateTask(ctx, coordinator.TaskRequest{Name: fmt.Sprintf("batch-%02d", i), Image: c.image,
			CPU: &cpu, Command: []string{"-sleep", "300ms"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID.String())
	}
	c.eventually(3*time.Minute, "all 50 tasks to finish", func() bool {
		done, err := c.store.ListTasks(ctx, postgres.TaskFilter{States: []queue.State{queue.Completed, queue.Failed, queue.Stopped}})
		return err == nil && len(done) == n
	})
	perNode := map[string]int{}
	for _, id := range ids {
		d := c.task(id)
		if d.State != queue.Completed || d.Attempt != 1 {
			t.Errorf("task %s: %s attempt %d (%s)", d.Name, d.State, d.Attempt, d.Error)
		}
		starts, runs := 0, 0
		nodes := map[string]bool{}
		for _, e := range d.Events {
			if e.NodeID != nil {
				nodes[e.NodeID.String()] = true
			}
			switch e.To {
			case queue.Starting:
				starts++
			case queue.Running:
				runs++
			}
		}
		if starts != 1 || runs != 1 || len(nodes) != 1 {
			t.Errorf("task %s: claimed %d times, ran %d times, on %d nodes; want 1, 1, 1", d.Name, starts, runs, len(nodes))
		}
		perNode[d.NodeName]++
	}
	if len(perNode) != 2 {
		t.Errorf("tasks per node = %v, want both agents used under spread", perNode)
	}
	t.Logf("tasks per node: %v", perNode)
}
