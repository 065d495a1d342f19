package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

// simCluster is a database, a stand-in scheduler and agents running in this
// process over in-memory runtimes: fast, and real where it matters here (the
// store, the agent's loops, fencing).
type simCluster struct {
	t      *testing.T
	ctx    context.Context
	url    string
	store  *postgres.Store
	mu     sync.Mutex
	logs   bytes.Buffer
	agents map[string]*simAgent
}

type simAgent struct {
	*Agent
	rt     Runtime
	cancel context.CancelFunc
	done   chan struct{}
}

func newSimCluster(t *testing.T) *simCluster {
	t.Helper()
	url := pgtest.New(t)
	store, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &simCluster{t: t, ctx: ctx, url: url, store: store, agents: map[string]*simAgent{}}
	t.Cleanup(func() {
		cancel()
		c.mu.Lock()
		agents := c.agents
		c.mu.Unlock()
		for _, a := range agents {
			<-a.done
		}
		store.Close()
		if t.Failed() {
			c.mu.Lock()
			t.Logf("agent logs:\n%s", c.logs.String())
			c.mu.Unlock()
		}
	})
	go c.schedule()
	return c
}

// schedule places pending tasks on the ready, uncordoned node with the most
// free CPU, every 50 ms — a stand-in for the coordinator's loop.
func (c *simCluster) schedule() {
	for c.ctx.Err() == nil {
		_, _ = c.store.SchedulePass(c.ctx, postgres.PassOpts{Batch: 100, By: "test", NodeTimeout: time.Minute},
			func(tasks []queue.Task, snap queue.Snapshot) queue.Plan {
				nodes := snap.Nodes
				p := queue.Plan{Unplaced: map[uuid.UUID]string{}}
				free := map[uuid.UUID]int64{}
				for _, n := range nodes {
					free[n.ID] = n.Free().CPUMillis
				}
				for _, t := range tasks {
					var best *queue.Node
					for i := range nodes {
						n := &nodes[i]
						if n.State == queue.NodeReady && !n.Cordoned && (best == nil || free[n.ID] > free[best.ID]) {
							best = n
						}
					}
					if best == nil {
						p.Unplaced[t.ID] = "no node"
						continue
					}
					free[best.ID] -= t.Resources.CPUMillis
					p.Placements = append(p.Placements, queue.Placement{TaskID: t.ID, NodeID: best.ID})
				}
				return p
			})
		select {
		case <-c.ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type logWriter struct{ c *simCluster }

func (w logWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.logs.Write(p)
}

// start runs an agent for node name over rt until the test ends or stop.
func (c *simCluster) start(name string, rt Runtime) *simAgent {
	c.t.Helper()
	return c.startWith(name, rt, c.store)
}

// startWith runs an agent that reaches the database through store.
func (c *simCluster) startWith(name string, rt Runtime, store *postgres.Store) *simAgent {
	c.t.Helper()
	a := New(store, rt, Options{
		Name: name, Capacity: queue.Resources{CPUMillis: 100_000, MemoryBytes: 1 << 40, DiskBytes: 1 << 40},
		HeartbeatInterval: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond, StopGrace: 100 * time.Millisecond,
		RestartBackoff: queue.Backoff{Base: 200 * time.Millisecond, Max: 800 * time.Millisecond}, ReconcileInterval: time.Second,
		ImageFailures: 2, ImageCooloff: time.Minute,
		Logger: slog.New(slog.NewTextHandler(logWriter{c}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err := a.Register(c.ctx); err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	sa := &simAgent{Agent: a, rt: rt, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(sa.done); _ = a.Run(ctx) }()
	c.mu.Lock()
	c.agents[name] = sa
	c.mu.Unlock()
	return sa
}

// declareDown does what the sweeper does to a silent node: it marks the
// agent's node down and moves its live tasks (want of them) back to the
// queue, while the agent itself runs on.
func (c *simCluster) declareDown(a *simAgent, want int) {
	c.t.Helper()
	// An agent that still beats marks its node ready again, maybe between
	// the two steps (then nothing moves): try again, as the sweeper would
	// on its next round.
	db, err := pgx.Connect(c.ctx, c.url)
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := db.Exec(c.ctx, `UPDATE nodes SET state = 'down', cordoned = true WHERE id = $1`, a.Node().ID); err != nil {
			c.t.Fatal(err)
		}
		n, _, err := c.store.EvacuateNode(c.ctx, a.Node().ID, time.Second)
		if err == nil && n == want {
			return
		}
		if err != nil || n != 0 || time.Now().After(deadline) {
			c.t.Fatalf("evacuate: %d, %v; want %d moved", n, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends an agent process, as a crash would: its containers stay.
func (c *simCluster) stop(a *simAgent) {
	a.cancel()
	<-a.done
	c.mu.Lock()
	delete(c.agents, a.opts.Name)
	c.mu.Unlock()
}

func (c *simCluster) create(spec queue.TaskSpec) queue.Task {
	c.t.Helper()
	if spec.Image == "" {
		spec.Image = "workload"
	}
	if spec.Resources.CPUMillis == 0 {
		spec.Resources.CPUMillis = 100
	}
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		c.t.Fatal(err)
	}
	tk, err := c.store.CreateTask(c.ctx, uuid.Nil, spec)
	if err != nil {
		c.t.Fatal(err)
	}
	return tk
}

func (c *simCluster) task(id uuid.UUID) queue.Task {
	c.t.Helper()
	tk, err := c.store.GetTask(c.ctx, id)
	if err != nil {
		c.t.Fatal(err)
	}
	return tk
}

func (c *simCluster) eventually(d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *simCluster) waitState(id uuid.UUID, d time.Duration, want ...queue.State) queue.Task {
	c.t.Helper()
	var tk queue.Task
	c.eventually(d, fmt.Sprintf("task %s to be %v", id, want), func() bool {
		tk = c.task(id)
		for _, s := range want {
			if tk.State == s {
				return true
			}
		}
		return false
	})
	return tk
}

// running lists the running containers of a task in rt, by node.
func running(t *testing.T, rt Runtime, task uuid.UUID) map[string]int {
	t.Helper()
	cs, err := rt.List(context.Background(), map[string]string{LabelTask: task.String()})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range cs {
		if c.Running {
			out[c.Labels[LabelNode]]++
		}
	}
	return out
}

func events(t *testing.T, s *postgres.Store, id uuid.UUID) []queue.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestAgent_LeaseMovedAway_RemovesItsContainerWhileRunning(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{} // one engine, shared by both agents, as in the e2e tests
	a := c.start("a", rt)
	tk := c.create(queue.TaskSpec{Name: "web"})
	got := c.waitState(tk.ID, 10*time.Second, queue.Running)
	if *got.NodeID != a.Node().ID {
		t.Fatalf("placed on %v", got.NodeID)
	}
	c.start("b", rt)
	// The cluster gives node a up while its agent runs on (it was cut off,
	// say): the task moves to b.
	c.declareDown(a, 1)
	c.eventually(10*time.Second, "the task to run on b only", func() bool {
		tk := c.task(tk.ID)
		r := running(t, rt, tk.ID)
		return tk.State == queue.Running && tk.Attempt == 2 && len(r) == 1 && r[tk.NodeID.String()] == 1
	})
	if tk := c.task(tk.ID); tk.Restarts != 0 {
		t.Errorf("a lost node counted as %d restarts", tk.Restarts)
	}
	// The old attempt wrote nothing after it lost its lease.
	for _, e := range events(t, c.store, tk.ID) {
		if e.Attempt == 1 && e.From == queue.Running && e.Reason != "" && !strings.HasPrefix(e.Reason, "lost: node a is down") {
			t.Errorf("attempt 1 wrote %s→%s (%s) after losing its lease", e.From, e.To, e.Reason)
		}
	}
}

func TestAgent_RestartPolicy_OnFailure_RestartsWithBackoffThenFails(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{RunFor: 50 * time.Millisecond, ExitCode: 3}
	c.start("a", rt)
	tk := c.create(queue.TaskSpec{RestartPolicy: queue.RestartOnFailure, MaxRestarts: 3})
	got := c.waitState(tk.ID, 20*time.Second, queue.Failed, queue.Completed)
	if got.State != queue.Failed || got.Restarts != 3 || got.Attempt != 4 || got.ExitCode == nil || *got.ExitCode != 3 {
		t.Fatalf("ended %s after %d restarts, attempt %d, exit %v; want failed after 3 restarts, attempt 4, exit 3",
			got.State, got.Restarts, got.Attempt, got.ExitCode)
	}
	// Every attempt ran, and the gap before each restart grew with the backoff.
	var runs int
	var exits, placed []time.Time
	for _, e := range events(t, c.store, tk.ID) {
		switch {
		case e.To == queue.Running:
			runs++
		case e.From == queue.Running && e.To == queue.Pending:
			exits = append(exits, e.At)
			if !strings.Contains(e.Reason, "exited with code 3; restart ") {
				t.Errorf("restart reason %q", e.Reason)
			}
		case e.To == queue.Scheduled && e.Attempt > 1:
			placed = append(placed, e.At)
		}
	}
	if runs != 4 || len(exits) != 3 || len(placed) != 3 {
		t.Fatalf("%d runs, %d restarts, %d re-placements; want 4, 3, 3", runs, len(exits), len(placed))
	}
	b := queue.Backoff{Base: 200 * time.Millisecond, Max: 800 * time.Millisecond}
	for i := range exits {
		if gap := placed[i].Sub(exits[i]); gap < b.Delay(i) {
			t.Errorf("restart %d placed %s after the exit, want at least %s", i+1, gap, b.Delay(i))
		}
	}
}

func TestAgent_RestartPolicy_AlwaysRestartsAfterExit0_NeverDoesNot(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	c.start("a", &MemRuntime{RunFor: 30 * time.Millisecond})
	always := c.create(queue.TaskSpec{Name: "always", RestartPolicy: queue.RestartAlways, MaxRestarts: 2})
	never := c.create(queue.TaskSpec{Name: "never", RestartPolicy: queue.RestartNever})
	if got := c.waitState(always.ID, 20*time.Second, queue.Completed, queue.Failed); got.State != queue.Completed || got.Restarts != 2 {
		t.Errorf("always: %s after %d restarts, want completed after 2", got.State, got.Restarts)
	}
	if got := c.waitState(never.ID, 20*time.Second, queue.Completed, queue.Failed); got.State != queue.Completed || got.Restarts != 0 || got.Attempt != 1 {
		t.Errorf("never: %s after %d restarts, attempt %d", got.State, got.Restarts, got.Attempt)
	}
}

func TestAgent_EngineDown_NodeUnhealthy_WorkGoesElsewhere_ThenBack(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rtA, rtB := &MemRuntime{}, &MemRuntime{}
	a := c.start("a", rtA)
	rtA.SetFailStart(errors.New("connection refused"))
	c.eventually(10*time.Second, "node a to be unhealthy", func() bool {
		n, err := c.store.GetNode(c.ctx, "a")
		return err == nil && n.State == queue.NodeUnhealthy && strings.Contains(n.HealthError, "connection refused")
	})
	c.start("b", rtB)
	tasks := make([]queue.Task, 5)
	for i := range tasks {
		tasks[i] = c.create(queue.TaskSpec{})
	}
	for _, tk := range tasks {
		if got := c.waitState(tk.ID, 10*time.Second, queue.Running); got.NodeName != "" && got.NodeName != "b" {
			t.Errorf("task on %s", got.NodeName)
		}
		if got := c.task(tk.ID); *got.NodeID == a.Node().ID {
			t.Errorf("task %s runs on the unhealthy node", tk.ID)
		}
	}
	rtA.SetFailStart(nil)
	c.eventually(10*time.Second, "node a to be ready again", func() bool {
		n, err := c.store.GetNode(c.ctx, "a")
		return err == nil && n.State == queue.NodeReady && n.HealthError == ""
	})
}

// dyingEngine answers pings until its first start, which fails and takes
// the engine down with it.
type dyingEngine struct {
	*MemRuntime
	dead atomic.Bool
}

func (d *dyingEngine) Start(ctx context.Context, spec ContainerSpec) (string, error) {
	d.dead.Store(true)
	return "", errors.New("engine refused the request")
}

func (d *dyingEngine) Ping(ctx context.Context) error {
	if d.dead.Load() {
		return errors.New("connection refused")
	}
	return nil
}

func TestAgent_EngineDownAtStart_TaskHandedBackNotFailed(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	a := c.start("a", &dyingEngine{MemRuntime: &MemRuntime{}})
	tk := c.create(queue.TaskSpec{RestartPolicy: queue.RestartNever})
	c.eventually(10*time.Second, "the task to be handed back", func() bool {
		for _, e := range events(t, c.store, tk.ID) {
			if e.From == queue.Starting && e.To == queue.Pending && strings.HasPrefix(e.Reason, "lost: docker engine on node a failed") {
				return true
			}
		}
		return false
	})
	if n, _ := c.store.GetNode(c.ctx, "a"); n.State != queue.NodeUnhealthy {
		t.Errorf("node a is %s after its engine failed, want unhealthy", n.State)
	}
	c.start("b", &MemRuntime{})
	got := c.waitState(tk.ID, 10*time.Second, queue.Running, queue.Failed)
	if got.State != queue.Running || *got.NodeID == a.Node().ID || got.Restarts != 0 {
		t.Errorf("after the engine failed: %s on %s, %d restarts; want running elsewhere, no restart", got.State, got.NodeName, got.Restarts)
	}
}

// pullFails is an engine that answers but cannot pull one image.
type pullFails struct{ *MemRuntime }

func (p pullFails) Start(ctx context.Context, spec ContainerSpec) (string, error) {
	if spec.Image == "registry.invalid/missing:1" {
		return "", fmt.Errorf("pull image %s: %w: no route to registry", spec.Image, ErrImage)
	}
	return p.MemRuntime.Start(ctx, spec)
}

func TestAgent_ImagePullsFailing_MakeTheNodeUnhealthy(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	c.start("a", pullFails{&MemRuntime{}})
	var ids []uuid.UUID
	for i := 0; i < 2; i++ { // ImageFailures is 2 in these tests
		ids = append(ids, c.create(queue.TaskSpec{Image: "registry.invalid/missing:1"}).ID)
	}
	for _, id := range ids {
		if got := c.waitState(id, 10*time.Second, queue.Failed); !strings.Contains(got.Error, "no route to registry") {
			t.Errorf("error %q", got.Error)
		}
	}
	c.eventually(10*time.Second, "node a to be unhealthy", func() bool {
		n, err := c.store.GetNode(c.ctx, "a")
		return err == nil && n.State == queue.NodeUnhealthy && strings.Contains(n.HealthError, "2 image pulls failed in a row")
	})
}

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

// healthServer answers /healthz with 200 while healthy is set, 503 otherwise.
func healthServer(t *testing.T) (port int, healthy *atomic.Bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	healthy = &atomic.Bool{}
	healthy.Store(true)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, healthy
}

func TestAgent_HealthCheck_HTTP_UnhealthyIsRestartedThenFails(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	port, healthy := healthServer(t)
	c.start("a", &MemRuntime{})
	tk := c.create(queue.TaskSpec{RestartPolicy: queue.RestartOnFailure, MaxRestarts: 1,
		HealthCheck: &queue.HealthCheck{Type: queue.HealthHTTP, Port: port, Path: "/healthz",
			Interval: queue.Duration(100 * time.Millisecond), Timeout: queue.Duration(100 * time.Millisecond), FailureThreshold: 2}})
	c.eventually(10*time.Second, "the task to be healthy", func() bool {
		got := c.task(tk.ID)
		return got.State == queue.Running && got.Health == queue.HealthHealthy && got.HealthAt != nil
	})
	healthy.Store(false)
	got := c.waitState(tk.ID, 20*time.Second, queue.Failed, queue.Completed)
	if got.State != queue.Failed || got.Restarts != 1 || got.Attempt != 2 || got.Health != queue.HealthUnhealthy {
		t.Fatalf("ended %s, health %q, after %d restarts, attempt %d; want failed, unhealthy, 1 restart, attempt 2",
			got.State, got.Health, got.Restarts, got.Attempt)
	}
	if !strings.Contains(got.Error, "HTTP 503") || !strings.Contains(got.HealthDetail, "2 probes in a row failed") {
		t.Errorf("error %q, health detail %q", got.Error, got.HealthDetail)
	}
	restarted := false
	for _, e := range events(t, c.store, tk.ID) {
		restarted = restarted || (e.From == queue.Running && e.To == queue.Pending && strings.HasPrefix(e.Reason, "health check failed: "))
	}
	if !restarted {
		t.Error("no event records the restart after the failed health check")
	}
}

func TestAgent_HealthCheck_TCP_StartPeriodForgivesEarlyFailures(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	// Nothing listens yet: the program "takes a while to come up".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c.start("a", &MemRuntime{})
	tk := c.create(queue.TaskSpec{RestartPolicy: queue.RestartNever,
		HealthCheck: &queue.HealthCheck{Type: queue.HealthTCP, Port: port, Interval: queue.Duration(100 * time.Millisecond),
			Timeout: queue.Duration(100 * time.Millisecond), FailureThreshold: 2, StartPeriod: queue.Duration(time.Second)}})
	c.waitState(tk.ID, 10*time.Second, queue.Running)
	time.Sleep(500 * time.Millisecond)
	ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("port %d was taken meanwhile: %v", port, err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	c.eventually(10*time.Second, "the task to be healthy", func() bool {
		got := c.task(tk.ID)
		return got.Health == queue.HealthHealthy
	})
	if got := c.task(tk.ID); got.State != queue.Running || got.Attempt != 1 {
		t.Errorf("task %s attempt %d, want still running its first attempt", got.State, got.Attempt)
	}
}

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

func TestAgent_TouchesOnlyContainersLabelledForItsNode(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{}
	// Registered but not running: no reconcile removes the test's containers.
	a := New(c.store, rt, Options{Name: "a", Capacity: queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30}})
	if err := a.Register(c.ctx); err != nil {
		t.Fatal(err)
	}
	foreign, err := rt.Start(c.ctx, ContainerSpec{Name: "not-orch", Image: "x", Labels: map[string]string{"app": "theirs"}})
	if err != nil {
		t.Fatal(err)
	}
	othersNode, err := rt.Start(c.ctx, ContainerSpec{Name: "other-node", Image: "x", Labels: map[string]string{LabelNode: uuid.NewString()}})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := rt.Start(c.ctx, ContainerSpec{Name: "mine", Image: "x", Labels: map[string]string{LabelNode: a.Node().ID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ownsContainer(c.ctx, foreign) || a.ownsContainer(c.ctx, othersNode) {
		t.Error("the agent would touch a container without its node's label")
	}
	if !a.ownsContainer(c.ctx, mine) {
		t.Error("the agent does not recognise its own container")
	}
}
