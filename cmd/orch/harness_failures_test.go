package main

import (
	"bytes"
	"context"
	"os/exec"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/agent/dockertest"
)

// Helpers for the failure tests, on top of cluster_test.go's harness.

// startAgentWith runs an agent process like startAgent, with extra flags
// (later flags win) and extra environment variables (e.g. DOCKER_HOST).
func (c *cluster) startAgentWith(name string, env []string, extra ...string) {
	c.t.Helper()
	args := append([]string{"agent", "--database-url", c.db, "--name", name, "--cpu", "2", "--memory", "4GiB", "--disk", "10GiB",
		"--poll-interval", "500ms", "--heartbeat-interval", "1s", "--stop-grace", "3s"}, extra...)
	c.startEnv(name, env, args...)
	for _, n := range c.nodes {
		if n == name {
			return
		}
	}
	c.nodes = append(c.nodes, name)
}

// startEnv is start with extra environment variables.
func (c *cluster) startEnv(name string, env []string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(orchBin, args...)
	buf := &bytes.Buffer{}
	c.mu.Lock()
	if old, ok := c.logs[name]; ok { // a restarted process: keep one log per name
		buf = old
	}
	c.mu.Unlock()
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: buf, mu: &c.mu}, &lockedWriter{w: buf, mu: &c.mu}
	cmd.Env = append(c.env(), env...)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.procs[name], c.logs[name] = cmd, buf
	c.mu.Unlock()
}

// signal sends sig to a running process of the cluster.
func (c *cluster) signal(name string, sig syscall.Signal) {
	c.t.Helper()
	c.mu.Lock()
	cmd := c.procs[name]
	c.mu.Unlock()
	if cmd == nil {
		c.t.Fatalf("no process %s", name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %v to %s: %v", sig, name, err)
	}
}

// liveContainers maps each task to the nodes on which a container of it
// runs, as Docker sees them (by labels), for the given node ids.
func liveContainers(t *testing.T, c *cluster, nodeIDs map[string]bool) map[string][]string {
	t.Helper()
	list, err := c.docker.ContainerList(context.Background(), container.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", agent.LabelTask), filters.Arg("status", "running")),
	})
	if err != nil {
		t.Fatalf("listing containers: %v", err)
	}
	out := map[string][]string{}
	for _, ct := range list {
		node := ct.Labels[agent.LabelNode]
		if !nodeIDs[node] {
			continue // another test's
		}
		out[ct.Labels[agent.LabelTask]] = append(out[ct.Labels[agent.LabelTask]], node)
	}
	return out
}

// runWorkload starts a container of the workload image outside of orch,
// with the given labels, and removes it when the test ends.
func runWorkload(t *testing.T, c *cluster, name string, labels map[string]string) string {
	t.Helper()
	ctx := context.Background()
	labels[dockertest.TestLabel] = "1"
	created, err := c.docker.ContainerCreate(ctx, &container.Config{Image: c.image, Cmd: []string{"-sleep", "forever"}, Labels: labels},
		&container.HostConfig{}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.docker.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	})
	if err := c.docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return created.ID
}
