package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/google/uuid"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/proc"
)

func TestE2E_TaskLifecycleThroughCLIAndDocker(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 1})

	t.Run("exit 0 ends completed", func(t *testing.T) {
		tk := createTask(t, c, "--name", "ok", "--", "-exit", "0")
		d := c.waitState(tk.ID.String(), 60*time.Second, terminal)
		if d.State != queue.Completed || d.ExitCode == nil || *d.ExitCode != 0 {
			t.Fatalf("task ended %s exit %s, want completed 0; error %q", d.State, exitText(d.ExitCode), d.Error)
		}
		var states []queue.State
		for _, e := range d.Events {
			states = append(states, e.To)
		}
		want := "pending scheduled starting running completed"
		if got := strings.Join(toStrings(states), " "); got != want {
			t.Errorf("events %s, want %s", got, want)
		}
	})

	t.Run("exit 3 ends failed with code 3", func(t *testing.T) {
		tk := createTask(t, c, "--name", "bad", "--", "-exit", "3")
		d := c.waitState(tk.ID.String(), 60*time.Second, terminal)
		if d.State != queue.Failed || d.ExitCode == nil || *d.ExitCode != 3 {
			t.Fatalf("task ended %s exit %s (error %q), want failed 3", d.State, exitText(d.ExitCode), d.Error)
		}
		out, code := c.orch("task", "get", tk.ID.String())
		if code != 0 || !strings.Contains(out, "failed") || !strings.Contains(out, "exited with code 3") {
			t.Errorf("orch task get (exit %d):\n%s", code, out)
		}
	})

	t.Run("a task that outgrows its memory ends failed, killed: out of memory", func(t *testing.T) {
		tk := createTask(t, c, "--name", "hog", "--memory", "32MiB", "--", "-mem-delay", "500ms", "-mem", "256MiB", "-sleep", "forever")
		d := c.waitState(tk.ID.String(), 60*time.Second, terminal)
		if d.State != queue.Failed || d.ExitCode == nil || *d.ExitCode != 137 || d.Error != "killed: out of memory" {
			t.Fatalf("task ended %s exit %s (error %q), want failed 137, killed: out of memory", d.State, exitText(d.ExitCode), d.Error)
		}
		out, code := c.orch("task", "get", tk.ID.String())
		if code != 0 || !strings.Contains(out, "killed: out of memory") {
			t.Errorf("orch task get (exit %d):\n%s", code, out)
		}
	})

	t.Run("long-running task runs with labels and limits, delete removes it", func(t *testing.T) {
		out, code := c.orch("task", "create", "--image", c.image, "--name", "sleeper", "--cpu", "0.5", "--memory", "64MiB",
			"--env", "GREETING=hello", "--wait", "--", "-sleep", "forever")
		if code != 0 || !strings.Contains(out, "running") {
			t.Fatalf("create --wait (exit %d):\n%s", code, out)
		}
		id := strings.Fields(lastLine(out))[0]
		d := c.task(id)
		if d.State != queue.Running || d.ContainerID == "" {
			t.Fatalf("task %s is %s with container %q", id, d.State, d.ContainerID)
		}
		info, err := c.docker.ContainerInspect(context.Background(), d.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		if !info.State.Running {
			t.Errorf("container is not running: %+v", info.State)
		}
		if info.Config.Labels[agent.LabelTask] != id || info.Config.Labels[agent.LabelNode] != d.NodeID.String() ||
			info.Config.Labels[agent.LabelAttempt] != "1" {
			t.Errorf("labels = %v", info.Config.Labels)
		}
		if info.HostConfig.NanoCPUs != 500_000_000 || info.HostConfig.Memory != 64<<20 {
			t.Errorf("limits: NanoCPUs %d Memory %d, want 5e8 and 64MiB", info.HostConfig.NanoCPUs, info.HostConfig.Memory)
		}
		if !contains(info.Config.Env, "GREETING=hello") {
			t.Errorf("env = %v", info.Config.Env)
		}
		out, code = c.orch("task", "delete", id, "--wait")
		if code != 0 {
			t.Fatalf("delete --wait (exit %d):\n%s", code, out)
		}
		d = c.task(id)
		if d.State != queue.Stopped || d.DesiredState != queue.DesiredStopped {
			t.Errorf("after delete: %s / desired %s", d.State, d.DesiredState)
		}
		c.eventually(15*time.Second, "the container to be removed", func() bool {
			_, err := c.docker.ContainerInspect(context.Background(), d.ContainerID)
			return cerrdefs.IsNotFound(err)
		})
	})

	t.Run("the seed's POST body runs", func(t *testing.T) {
		id := uuid.New()
		body := `{"ID":"` + uuid.NewString() + `","State":2,"Task":{"State":1,"ID":"` + id.String() + `","Name":"task-1","Image":"` + c.image + `"}}`
		resp, err := http.Post(c.addrs[0]+"/tasks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var created queue.Task
		_ = json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if resp.StatusCode != 201 || created.ID != id || created.Name != "task-1" {
			t.Fatalf("POST seed body: %d %+v", resp.StatusCode, created)
		}
		d := c.waitState(id.String(), 60*time.Second, terminal)
		if d.State != queue.Completed {
			t.Fatalf("seed task ended %s: %s", d.State, d.Error)
		}
	})

	t.Run("an image no node has and none can pull fails the task, the agent carries on", func(t *testing.T) {
		var missing queue.Task
		c.orchJSON(&missing, "task", "create", "--image", "orch-no-such-image-"+proc.RandomHex(6)+":1")
		d := c.waitState(missing.ID.String(), 60*time.Second, terminal)
		if d.State != queue.Failed || d.Error == "" {
			t.Fatalf("missing image: %s, error %q", d.State, d.Error)
		}
		if !strings.Contains(strings.ToLower(d.Error), "pull") && !strings.Contains(strings.ToLower(d.Error), "not found") &&
			!strings.Contains(strings.ToLower(d.Error), "no such") {
			t.Errorf("error does not carry Docker's text: %q", d.Error)
		}
		after := createTask(t, c, "--name", "after")
		if d := c.waitState(after.ID.String(), 60*time.Second, terminal); d.State != queue.Completed {
			t.Fatalf("the next task after a pull failure ended %s: %s", d.State, d.Error)
		}
	})
}

func toStrings(states []queue.State) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func exitText(code *int) string {
	if code == nil {
		return "none"
	}
	return fmt.Sprint(*code)
}

// The CLI sets stop_after_disconnect; the API stores it and `orch task get`
// shows it. What the agent does with it is tested in agent/disconnect_test.go.
func TestE2E_StopAfterDisconnect_SetByTheCLI_ShownByGet(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 0})
	tk := createTask(t, c, "--name", "singleton", "--stop-after-disconnect", "3s")
	if tk.StopAfterDisconnect != queue.Duration(3*time.Second) {
		t.Errorf("created with stop_after_disconnect %s, want 3s", tk.StopAfterDisconnect)
	}
	if got := c.task(tk.ID.String()); got.StopAfterDisconnect != queue.Duration(3*time.Second) {
		t.Errorf("stored stop_after_disconnect %s, want 3s", got.StopAfterDisconnect)
	}
	out, code := c.orch("task", "get", tk.ID.String())
	if code != 0 || !regexp.MustCompile(`(?m)^stop after disconnect\s+3s$`).MatchString(out) {
		t.Errorf("orch task get → exit %d:\n%s\nwant a line 'stop after disconnect 3s'", code, out)
	}
	plain := createTask(t, c, "--name", "plain")
	if out, _ := c.orch("task", "get", plain.ID.String()); regexp.MustCompile(`stop after disconnect`).MatchString(out) {
		t.Errorf("a task without it shows a stop after disconnect line:\n%s", out)
	}
}

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

func TestE2E_HealthCheck_HTTP_VisibleInTaskGet_UnhealthyIsRestarted(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1})
	node := "e2e-health-" + proc.RandomHex(3)
	c.startAgent(node, "--restart-backoff", "200ms")
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

func TestE2E_HealthCheck_TCP_AClosedPortFailsTheTask_BadFlagsExit2(t *testing.T) {
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
	c.startAgent(node, "--restart-backoff", "300ms", "--restart-backoff-max", "1s")
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
