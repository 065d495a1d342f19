package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/postgres/storetest"
	"github.com/orchd/orch/queue/secrets"
	"github.com/orchd/orch/scheduler"
)

// This file holds the fixtures the package's tests share: a cluster of
// agents in this process (simCluster), one agent over its own database
// (agentRig), and what both lean on. Those of the store (a database, a
// task, a plan) are in queue/postgres/storetest; the Docker ones are in
// docker_test.go and agent/dockertest.

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
	// key, when set, is the cluster's secrets key, given to the agents it
	// starts from then on.
	key *secrets.Key
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
	store := storetest.Open(t, url) // closed after the cleanup below
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
		ImageFailures: 2, ImageCooloff: time.Minute, SecretsKey: c.key,
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
	db := storetest.Conn(c.t, c.url)
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
	return storetest.Task(c.t, c.store, spec)
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
	eventually(c.t, d, what, cond)
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

// events lists the events of task id, oldest first.
func events(t *testing.T, s *postgres.Store, id uuid.UUID) []queue.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// agentRig is one agent over its own database and a runtime, with a way
// to place tasks on it (a scheduling pass, as a coordinator would run).
type agentRig struct {
	t     *testing.T
	store *postgres.Store
	agent *Agent
	sched *scheduler.Scheduler
}

func newAgentRig(t *testing.T, rt Runtime, opts Options) *agentRig {
	t.Helper()
	store := storetest.New(t)
	if opts.Name == "" {
		opts.Name = "n-" + uuid.NewString()[:8]
	}
	if opts.Capacity == (queue.Resources{}) {
		opts.Capacity = queue.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30}
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	a := New(store, rt, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if err := a.Register(ctx); err != nil {
		t.Fatal(err)
	}
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	sched, err := scheduler.New("binpack")
	if err != nil {
		t.Fatal(err)
	}
	return &agentRig{t: t, store: store, agent: a, sched: sched}
}

// submit creates a task and places it.
func (r *agentRig) submit(spec queue.TaskSpec) queue.Task {
	r.t.Helper()
	if spec.Image == "" {
		spec.Image = "mem"
	}
	tk := storetest.Task(r.t, r.store, spec)
	schedule(r.t, r.store, postgres.PassOpts{Batch: 10, By: "test"}, r.sched.Plan)
	return tk
}

// schedule runs scheduling passes as a coordinator's loop does: again while
// a pass lost its node to another transaction (a heartbeat holds the node's
// row for a moment), and returns what they placed.
func schedule(tb testing.TB, store *postgres.Store, opts postgres.PassOpts, plan postgres.PlanFunc) int {
	tb.Helper()
	placed := 0
	for try := 0; ; try++ {
		res, err := store.SchedulePass(context.Background(), opts, plan)
		if err != nil {
			tb.Fatal(err)
		}
		placed += res.Placed
		if res.Rejected == 0 || try == 50 {
			return placed
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor fails the test unless cond holds within d.
func (r *agentRig) waitFor(d time.Duration, what string, cond func() bool) {
	r.t.Helper()
	eventually(r.t, d, what, cond)
}

// state reads the state of task id.
func (r *agentRig) state(id uuid.UUID) queue.State {
	t, err := r.store.GetTask(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return t.State
}

// eventually fails the test unless cond holds within d; what names what
// it waits for.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
