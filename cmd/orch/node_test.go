package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestE2E_NodeDrain_MovesTasksToTheOtherNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 2})
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, createTask(t, c, "--", "-sleep", "forever").ID.String())
	}
	var from string
	for _, id := range ids {
		d := c.waitState(id, 60*time.Second, running)
		if from == "" {
			from = d.NodeName
		}
	}
	src, err := c.store.GetNode(context.Background(), from)
	if err != nil {
		t.Fatal(err)
	}
	out, code := c.orch("node", "drain", from, "--deadline", "30s")
	if code != 0 || !strings.Contains(out, "drained") || !strings.Contains(out, "0 tasks") {
		t.Fatalf("orch node drain (exit %d):\n%s", code, out)
	}
	for _, id := range ids {
		d := c.waitState(id, 60*time.Second, running)
		if d.NodeName == from {
			t.Errorf("task %s still on the drained node", d.Name)
		}
		if d.Restarts != 0 {
			t.Errorf("task %s: a drain counted as %d restarts", d.Name, d.Restarts)
		}
	}
	c.eventually(20*time.Second, "no container left on the drained node", func() bool {
		return len(liveContainers(t, c, map[string]bool{src.ID.String(): true})) == 0
	})
	out, _ = c.orch("node", "get", from)
	if !strings.Contains(out, "drained") {
		t.Errorf("orch node get of a drained node:\n%s", out)
	}
	// New work goes elsewhere until the node is uncordoned.
	late := createTask(t, c, "--", "-sleep", "forever")
	if d := c.waitState(late.ID.String(), 60*time.Second, running); d.NodeName == from {
		t.Errorf("a new task was placed on the drained node")
	}
	if out, code := c.orch("node", "uncordon", from); code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "ready") {
		t.Errorf("uncordon (exit %d): %s", code, out)
	}
	if out, code := c.orch("node", "drain", from, "--deadline", "-1s"); code != 2 {
		t.Errorf("a negative deadline: exit %d, want 2:\n%s", code, out)
	}
}
