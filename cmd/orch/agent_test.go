package main

import (
	"context"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/google/uuid"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/proc"
)

func running(s queue.State) bool { return s == queue.Running }

func TestE2E_AgentKilledAndRestarted_ReadoptsContainers_RecordsExits(t *testing.T) {
	t.Parallel()
	// A long node-down timeout: the agent is back long before anyone gives up on it.
	c := newCluster(t, clusterOpts{coordinators: 1, coordArgs: []string{"--node-down-timeout", "60s"}})
	node := "e2e-readopt-" + proc.RandomHex(3)
	c.startAgentWith(node, nil)
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

	c.startAgentWith(node, nil)
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

func TestE2E_HealthCheck_HTTP_VisibleInTaskGet_UnhealthyIsRestarted(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1})
	node := "e2e-health-" + proc.RandomHex(3)
	c.startAgentWith(node, nil, "--restart-backoff", "200ms")
	c.waitNodes(1)
	tk := createTask(t, c, "--name", "web", "--health-http", "8080/healthz", "--health-interval", "300ms",
		"--health-timeout", "250ms", "--health-failures", "2", "--restart-policy", "on-failure", "--max-restarts", "1",
		"--", "-serve", ":8080", "-unhealthy-after", "4s", "-sleep", "forever")
	id := tk.ID.String()
	c.eventually(60*time.Second, "the task to be healthy", func() bool {
		t, err := c.store.GetTask(context.Background(), tk.ID)
		return err == nil && t.Health == queue.HealthHealthy
	})
	out, _ := c.orch("task", "get", id)
	if !strings.Contains(out, "http :8080/healthz every 300ms") || !strings.Contains(out, "healthy (ok)") {
		t.Errorf("orch task get of a healthy task:\n%s", out)
	}
	d := c.waitState(id, 60*time.Second, terminal)
	if d.State != queue.Failed || d.Restarts != 1 || d.Attempt != 2 || d.Health != queue.HealthUnhealthy {
		t.Fatalf("ended %s, health %q, %d restarts, attempt %d; want failed, unhealthy, 1 restart, attempt 2", d.State, d.Health, d.Restarts, d.Attempt)
	}
	var restarts int
	for _, e := range d.Events {
		if e.From == queue.Running && e.To == queue.Pending && strings.Contains(e.Reason, "health check failed: 2 probes in a row failed") {
			restarts++
		}
	}
	if restarts != 1 {
		t.Errorf("%d restart events after a failed health check, want 1", restarts)
	}
	out, _ = c.orch("task", "get", id)
	if !strings.Contains(out, "unhealthy (2 probes in a row failed, the last: GET /healthz: HTTP 503)") {
		t.Errorf("orch task get of an unhealthy task:\n%s", out)
	}
}

func TestE2E_HealthCheck_TCP(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 1})
	tk := createTask(t, c, "--health-tcp", "9000", "--health-interval", "300ms", "--", "-tcp", ":9000", "-sleep", "forever")
	c.eventually(60*time.Second, "the task to be healthy", func() bool {
		t, err := c.store.GetTask(context.Background(), tk.ID)
		return err == nil && t.Health == queue.HealthHealthy
	})
	bad := createTask(t, c, "--health-tcp", "9001", "--health-interval", "300ms", "--health-failures", "2", "--", "-tcp", ":9000", "-sleep", "forever")
	d := c.waitState(bad.ID.String(), 60*time.Second, terminal)
	if d.State != queue.Failed || !strings.Contains(d.Error, "tcp ") || !strings.Contains(d.Error, ":9001: ") {
		t.Errorf("probing a closed port: %s, error %q", d.State, d.Error)
	}
	if out, code := c.orch("task", "create", "--image", c.image, "--health-tcp", "9000", "--health-http", "80/"); code != 2 {
		t.Errorf("two health checks: exit %d, want 2:\n%s", code, out)
	}
	if out, code := c.orch("task", "create", "--image", c.image, "--health-interval", "1s"); code != 2 || !strings.Contains(out, "needs a health check") {
		t.Errorf("health flags without a check: exit %d, want 2:\n%s", code, out)
	}
}

func TestE2E_RestartPolicy_OnFailure_ThroughDocker(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1})
	node := "e2e-restart-" + proc.RandomHex(3)
	c.startAgentWith(node, nil, "--restart-backoff", "300ms", "--restart-backoff-max", "1s")
	c.waitNodes(1)
	tk := createTask(t, c, "--restart-policy", "on-failure", "--max-restarts", "2", "--", "-exit", "3")
	d := c.waitState(tk.ID.String(), 90*time.Second, terminal)
	if d.State != queue.Failed || d.Restarts != 2 || d.Attempt != 3 || d.ExitCode == nil || *d.ExitCode != 3 {
		t.Fatalf("ended %s after %d restarts, attempt %d, exit %v; want failed, 2 restarts, attempt 3, exit 3", d.State, d.Restarts, d.Attempt, d.ExitCode)
	}
	runs := 0
	for _, e := range d.Events {
		if e.To == queue.Running {
			runs++
		}
	}
	if runs != 3 {
		t.Errorf("%d attempts ran, want 3", runs)
	}
	out, _ := c.orch("task", "get", tk.ID.String())
	if !strings.Contains(out, "restart 2 of 2 (on-failure) in 600ms") {
		t.Errorf("orch task get does not show the restarts:\n%s", out)
	}
	// Every container was removed after its exit was recorded.
	c.eventually(20*time.Second, "the containers to be removed", func() bool {
		list, err := c.docker.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", agent.LabelTask+"="+tk.ID.String()))})
		return err == nil && len(list) == 0
	})
}
