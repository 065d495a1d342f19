package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/google/uuid"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/agent/dockertest"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/postgres/proc"
)

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

func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	c := &cluster{t: t, db: pgtest.New(t), docker: dockertest.Require(t), image: dockertest.BuildWorkload(t),
		home: t.TempDir(), procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{}}
	ctx := context.Background()
	if out, code := c.orch("migrate", "up", "--database-url", c.db); code != 0 {
		t.Fatalf("migrate up: exit %d: %s", code, out)
	}
	store, err := postgres.Open(ctx, c.db)
	if err != nil {
		t.Fatal(err)
	}
	c.store = store
	t.Cleanup(c.shutdown)
	for i := 0; i < o.coordinators; i++ {
		addr := freeAddr(t)
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

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAgent runs an agent process for a node of the given name, with
// extra flags after the usual ones.
func (c *cluster) startAgent(name string, extra ...string) {
	c.start(name, append([]string{"agent", "--database-url", c.db, "--name", name, "--cpu", "2", "--memory", "4GiB", "--disk", "10GiB",
		"--poll-interval", "500ms", "--heartbeat-interval", "1s", "--stop-grace", "3s"}, extra...)...)
	c.nodes = append(c.nodes, name)
}

func (c *cluster) start(name string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(orchBin, args...)
	buf := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{w: buf, mu: &c.mu}, &lockedWriter{w: buf, mu: &c.mu}
	cmd.Env = c.env()
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
	if c.store != nil {
		nodes, _ := c.store.ListNodes(ctx)
		for _, n := range nodes {
			if _, err := dockertest.CleanupContainers(ctx, c.docker, map[string]string{agent.LabelNode: n.ID.String()}); err != nil {
				c.t.Errorf("removing containers of node %s: %v", n.Name, err)
			}
		}
		c.store.Close()
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

// orch runs the CLI against the first coordinator; it returns the combined
// output and the exit code.
func (c *cluster) orch(args ...string) (string, int) {
	c.t.Helper()
	cmd := exec.Command(orchBin, args...)
	cmd.Env = c.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), code
}

// orchJSON runs the CLI with -o json and decodes its stdout.
func (c *cluster) orchJSON(out any, args ...string) {
	c.t.Helper()
	cmd := exec.Command(orchBin, append([]string{"-o", "json"}, args...)...)
	cmd.Env = c.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("orch %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
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
