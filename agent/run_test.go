package agent

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/secrets"
)

func TestContainerName_UniqueForTasksCreatedTogether(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := uuid.Must(uuid.NewV7()) // same millisecond: same head
		tk := queue.Task{ID: id, TaskSpec: queue.TaskSpec{Name: "task-" + queue.ShortID(id)}, Attempt: 1}
		n := ContainerName(&tk)
		if seen[n] {
			t.Fatalf("container name %s given twice", n)
		}
		seen[n] = true
	}
	tk := queue.Task{ID: uuid.MustParse("01a230b2-d47d-7a69-9f0c-102459d3b8ef"), TaskSpec: queue.TaskSpec{Name: "web"}, Attempt: 3}
	if got, want := ContainerName(&tk), "orch-web-102459d3b8ef-3"; got != want {
		t.Errorf("ContainerName = %s, want %s", got, want)
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

// The agent's "running" write commits, but its answer is lost on the way
// back (the connection breaks). The agent writes again; the repeat must be
// taken as done, not refused: otherwise the agent removes a healthy
// container and the next reconcile records it as vanished.
func TestAgent_RunningWriteRepeatedAfterALostAnswer_KeepsTheContainer(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{}
	proxy, viaProxy := pgtest.NewProxy(t, c.url)
	store, err := postgres.Open(c.ctx, viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	proxy.LoseReplyTo([]byte("container started"))
	a := c.startWith("a", rt, store)
	tk := c.create(queue.TaskSpec{Name: "web"})
	c.waitState(tk.ID, 10*time.Second, queue.Running)
	// Give the agent its retries and two full reconciles (every second in
	// this rig) to get it wrong.
	time.Sleep(2500 * time.Millisecond)
	if proxy.Lost() != 1 {
		t.Fatalf("the proxy lost %d answers, want the one to the running write", proxy.Lost())
	}
	got := c.task(tk.ID)
	if got.State != queue.Running || got.Attempt != 1 {
		t.Errorf("the task is %s at attempt %d, want running at attempt 1", got.State, got.Attempt)
	}
	if r := running(t, rt, tk.ID); r[a.Node().ID.String()] != 1 {
		t.Errorf("containers of the task: %v, want its one container still running", r)
	}
	for _, e := range events(t, c.store, tk.ID) {
		if strings.Contains(e.Reason, "disappeared") || e.To == queue.Failed {
			t.Errorf("event %s → %s: %s", e.From, e.To, e.Reason)
		}
	}
}

// createWithSecrets stores a task whose secrets are sealed with key.
func (c *simCluster) createWithSecrets(key *secrets.Key, spec queue.TaskSpec) queue.Task {
	c.t.Helper()
	spec.Image, spec.Resources.CPUMillis = "workload", 100
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		c.t.Fatal(err)
	}
	id := uuid.Must(uuid.NewV7())
	sealed, err := key.Seal(id, spec.Secrets)
	if err != nil {
		c.t.Fatal(err)
	}
	tk, err := c.store.CreateTask(c.ctx, id, spec, postgres.CreateOpts{SealedSecrets: sealed})
	if err != nil {
		c.t.Fatal(err)
	}
	return tk
}

// The agent opens a task's secrets with the cluster's key and gives them to
// the container as environment variables; an agent without the key refuses
// to start the task, saying why, without the value.
func TestAgent_Secrets_GivenToTheContainerOnlyWithTheKey(t *testing.T) {
	t.Parallel()
	text, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := secrets.Parse(text)
	var mu sync.Mutex
	envs := map[string]map[string]string{}
	rt := &MemRuntime{Behave: func(spec ContainerSpec) (time.Duration, int) {
		mu.Lock()
		envs[spec.Labels[LabelName]] = spec.Env
		mu.Unlock()
		return 0, 0
	}}

	c := newSimCluster(t)
	c.start("keyless", rt)
	noKey := c.createWithSecrets(key, queue.TaskSpec{Name: "nokey", Secrets: map[string]string{"TOKEN": "v4lue-1"}})
	got := c.waitState(noKey.ID, 10*time.Second, queue.Failed)
	if !strings.Contains(got.Error, "--secrets-key-file") || strings.Contains(got.Error, "v4lue-1") {
		t.Errorf("on an agent without the key the task failed with %q", got.Error)
	}

	c2 := newSimCluster(t)
	c2.key = key
	c2.start("keyed", rt)
	tk := c2.createWithSecrets(key, queue.TaskSpec{Name: "withkey", Env: map[string]string{"MODE": "prod"},
		Secrets: map[string]string{"TOKEN": "v4lue-2"}})
	c2.waitState(tk.ID, 10*time.Second, queue.Running)
	mu.Lock()
	env := envs["withkey"]
	mu.Unlock()
	if env["TOKEN"] != "v4lue-2" || env["MODE"] != "prod" {
		t.Errorf("the container's environment has TOKEN=%q MODE=%q", env["TOKEN"], env["MODE"])
	}
	for _, e := range events(t, c2.store, tk.ID) {
		if strings.Contains(e.Reason, "v4lue") {
			t.Errorf("an event shows the secret: %s", e.Reason)
		}
	}
}
