package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/google/uuid"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/agent/dockertest"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/postgres/proc"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// This file holds the fixtures the package's tests share: a real cluster
// of orch processes (cluster) and the helpers for looking at it. The fault
// suite builds on it in faults_test.go.

// cluster is a real orch cluster for one test: its own database, coordinator
// and agent processes of the orch binary, and the local Docker engine.
type cluster struct {
	t      *testing.T
	db     string
	store  *postgres.Store
	docker *client.Client
	image  string
	home   string   // XDG_CONFIG_HOME of the processes: no stray config file
	addrs  []string // coordinator base URLs
	nodes  []string // agent node names
	mu     sync.Mutex
	procs  map[string]*exec.Cmd
	logs   map[string]*bytes.Buffer
}

type clusterOpts struct {
	coordinators int
	agents       int
	coordArgs    []string
	agentArgs    []string // extra flags for every agent newCluster starts
}

// newCluster starts a cluster on a database of its own, as o says, and
// stops it when the test ends.
func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	c := clusterOn(t, pgtest.New(t))
	t.Cleanup(c.shutdown)
	for i := 0; i < o.coordinators; i++ {
		addr := storetest.FreeAddr(t)
		name := fmt.Sprintf("coordinator-%d", i+1)
		args := append([]string{"coordinator", "--database-url", c.db, "--listen", addr, "--no-migrate",
			"--pass-interval", "300ms", "--node-down-timeout", "5s"}, o.coordArgs...)
		c.start(name, args...)
		c.addrs = append(c.addrs, "http://"+addr)
	}
	for _, a := range c.addrs {
		c.waitHealthy(a)
	}
	for i := 0; i < o.agents; i++ {
		c.startAgent(fmt.Sprintf("e2e-%s-%d", proc.RandomHex(4), i+1), o.agentArgs...)
	}
	c.waitNodes(o.agents)
	return c
}

// clusterOn is a cluster of no processes yet over the database at db,
// which it migrates as a user would (orch migrate up). Its store is closed
// when the test ends; stopping its processes (shutdown) is the caller's.
func clusterOn(t *testing.T, db string) *cluster {
	t.Helper()
	c := &cluster{t: t, db: db, docker: dockertest.Require(t), image: dockertest.BuildWorkload(t),
		home: t.TempDir(), procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{}}
	if out, code := c.orch("migrate", "up", "--database-url", c.db); code != 0 {
		t.Fatalf("migrate up: exit %d: %s", code, out)
	}
	c.store = storetest.Open(t, c.db)
	return c
}

// startAgent runs an agent process for a node of the given name, with
// extra flags after the usual ones (later flags win).
func (c *cluster) startAgent(name string, extra ...string) {
	c.t.Helper()
	c.startAgentWith(name, nil, extra...)
}

// startAgentWith is startAgent with extra environment variables (e.g.
// DOCKER_HOST). Called again for a node, it restarts the node's agent.
func (c *cluster) startAgentWith(name string, env []string, extra ...string) {
	c.t.Helper()
	args := append([]string{"agent", "--database-url", c.db, "--name", name, "--cpu", "2", "--memory", "4GiB", "--disk", "10GiB",
		"--poll-interval", "500ms", "--heartbeat-interval", "1s", "--stop-grace", "3s"}, extra...)
	c.startEnv(name, env, args...)
	if !slices.Contains(c.nodes, name) {
		c.nodes = append(c.nodes, name)
	}
}

// start runs the orch binary with args as the cluster's process name.
func (c *cluster) start(name string, args ...string) {
	c.t.Helper()
	c.startEnv(name, nil, args...)
}

// startEnv is start with extra environment variables. A process started
// again under its name (a restart) keeps one log.
func (c *cluster) startEnv(name string, env []string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(orchBin, args...)
	buf := &bytes.Buffer{}
	c.mu.Lock()
	if old, ok := c.logs[name]; ok {
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

// env is the environment of the cluster's processes: the test's, without
// the developer's ORCH_* settings or config file, and with the CLI pointed
// at the first coordinator.
func (c *cluster) env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ORCH_") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "XDG_CONFIG_HOME="+c.home)
	if len(c.addrs) > 0 {
		out = append(out, "ORCH_ADDR="+c.addrs[0])
	}
	return out
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startOrch starts the orch CLI with args against the cluster, and returns
// it with what it has written so far on stdout and stderr, for the test to
// read meanwhile.
func (c *cluster) startOrch(t *testing.T, args ...string) (*exec.Cmd, func() string) {
	t.Helper()
	cmd := exec.Command(orchBin, args...)
	cmd.Env = c.env()
	var buf bytes.Buffer
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: &buf, mu: &mu}, &lockedWriter{w: &buf, mu: &mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

// stop sends SIGTERM (or SIGKILL when kill is set) to a process and waits.
func (c *cluster) stop(name string, kill bool) {
	c.mu.Lock()
	cmd := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	proc.Terminate(cmd.Process, sig, done, 15*time.Second)
}

func (c *cluster) shutdown() {
	c.mu.Lock()
	names := make([]string, 0, len(c.procs))
	for n := range c.procs {
		names = append(names, n)
	}
	c.mu.Unlock()
	for _, n := range names {
		c.stop(n, false)
	}
	if c.t.Failed() {
		c.mu.Lock()
		for n, b := range c.logs {
			c.t.Logf("---- %s ----\n%s", n, b.String())
		}
		c.mu.Unlock()
	}
	// Agents leave containers running when they stop (a restarted agent
	// adopts them); a test's cluster is gone for good, so remove them.
	ctx := context.Background()
	if c.store != nil && c.docker != nil { // nil: agents on the memory runtime
		nodes, _ := c.store.ListNodes(ctx)
		for _, n := range nodes {
			if _, err := dockertest.CleanupContainers(ctx, c.docker, map[string]string{agent.LabelNode: n.ID.String()}); err != nil {
				c.t.Errorf("removing containers of node %s: %v", n.Name, err)
			}
		}
	}
}

func (c *cluster) waitHealthy(addr string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("coordinator at %s never became healthy", addr)
}

func (c *cluster) waitNodes(n int) {
	c.t.Helper()
	c.eventually(20*time.Second, fmt.Sprintf("%d nodes registered", n), func() bool {
		nodes, err := c.store.ListNodes(context.Background())
		return err == nil && len(nodes) >= n
	})
}

func (c *cluster) eventually(d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("timed out after %s waiting for %s", d, what)
}

// run runs the CLI against the first coordinator, its output going to
// stdout and stderr, and returns its exit code.
func (c *cluster) run(t *testing.T, stdout, stderr io.Writer, args ...string) int {
	t.Helper()
	cmd := exec.Command(orchBin, args...)
	cmd.Env = c.env()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// orch runs the CLI; it returns the combined output and the exit code.
func (c *cluster) orch(args ...string) (string, int) {
	c.t.Helper()
	var out bytes.Buffer
	code := c.run(c.t, &out, &out, args...)
	return out.String(), code
}

// orchSplit runs the CLI with stdout and stderr apart.
func orchSplit(t *testing.T, c *cluster, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := c.run(t, &stdout, &stderr, args...)
	return stdout.String(), stderr.String(), code
}

// orchJSON runs the CLI with -o json and decodes its stdout.
func (c *cluster) orchJSON(out any, args ...string) {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	if code := c.run(c.t, &stdout, &stderr, append([]string{"-o", "json"}, args...)...); code != 0 {
		c.t.Fatalf("orch %v: exit status %d\n%s%s", args, code, stdout.String(), stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		c.t.Fatalf("orch %v: output is not JSON: %v\n%s", args, err, stdout.String())
	}
}

// task reads a task through the API.
func (c *cluster) task(id string) coordinator.TaskDetail {
	c.t.Helper()
	var d coordinator.TaskDetail
	c.orchJSON(&d, "task", "get", id)
	return d
}

// waitState waits until the task reaches a state that done accepts.
func (c *cluster) waitState(id string, d time.Duration, done func(queue.State) bool) coordinator.TaskDetail {
	c.t.Helper()
	var last coordinator.TaskDetail
	c.eventually(d, "task "+id+" to change state", func() bool {
		t, err := c.store.GetTask(context.Background(), uuid.MustParse(id))
		last.Task = t
		return err == nil && done(t.State)
	})
	return c.task(id)
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

// createTask creates a task of the workload image with orch task create
// and the given flags and arguments.
func createTask(t *testing.T, c *cluster, args ...string) queue.Task {
	t.Helper()
	var tk queue.Task
	c.orchJSON(&tk, append([]string{"task", "create", "--image", c.image}, args...)...)
	return tk
}

// terminal and running are conditions for waitState.
func terminal(s queue.State) bool { return s.Terminal() }
func running(s queue.State) bool  { return s == queue.Running }

// lastLine is the last line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
