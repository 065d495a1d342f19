package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/uuid"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/proc"
)

func createTask(t *testing.T, c *cluster, args ...string) queue.Task {
	t.Helper()
	var tk queue.Task
	c.orchJSON(&tk, append([]string{"task", "create", "--image", c.image}, args...)...)
	return tk
}

func terminal(s queue.State) bool { return s.Terminal() }

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

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
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
