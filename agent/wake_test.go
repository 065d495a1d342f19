package agent

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/postgres/storetest"
)

func TestPollDelay_RareWhileListeningShortOtherwise(t *testing.T) {
	t.Parallel()
	a := New(nil, &MemRuntime{}, Options{PollInterval: time.Second, IdlePollInterval: 30 * time.Second})
	within := func(what string, lo time.Duration) {
		t.Helper()
		if d, safetyNet := a.pollDelay(); d < lo || d > lo+lo/5 || safetyNet != (lo > time.Second) {
			t.Errorf("%s: poll delay %v (safety net %v), want %v plus up to a fifth of jitter", what, d, safetyNet, lo)
		}
	}
	within("listener down", time.Second)
	a.listening.Store(true)
	within("listening", 30*time.Second)
	a.pollSoon()
	within("listening, but asked to look again soon", time.Second)
	within("listening, after that once", 30*time.Second)

	// A cluster that asks for beats every 20 s (1,000 nodes) gets its
	// safety-net polls and full reconciles every minute.
	a.beatEvery.Store(int64(20 * time.Second))
	within("listening, in a large cluster", time.Minute)
	if got := a.idleEvery(30 * time.Second); got != time.Minute {
		t.Errorf("reconcile every %s in a large cluster, want 1m", got)
	}
	a.beatEvery.Store(int64(2 * time.Second))
	if got := a.idleEvery(30 * time.Second); got != 30*time.Second {
		t.Errorf("reconcile every %s at the default beat, want 30s", got)
	}
}

// An agent that polls once an hour still claims new work at once: the
// scheduler's NOTIFY on its node channel wakes it.
func TestAgent_ClaimsOnNotificationWithoutPolling(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, a := newIdleAgent(t, pgtest.New(t), time.Hour)
	defer runListening(t, ctx, a)()
	// The agent has taken its first look (on connecting) and now waits.
	time.Sleep(100 * time.Millisecond)
	tk := storetest.Task(t, store, sleeper)
	node, err := store.GetNode(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	placed := schedule(t, store, postgres.PassOpts{By: "test"}, storetest.OnNode(node.ID))
	if placed != 1 {
		t.Fatalf("the pass placed %d tasks, want 1", placed)
	}
	waitRunning(t, store, tk.ID, "after placement; the agent polls hourly, so its wake-up did not work")
}

// A claim that finds a task of its node held by another transaction for a
// moment (a fenced write of the node's previous owner, say) looks again at
// the short poll interval: the notification that announced the task is
// spent, and the next rare poll may be an hour away.
func TestAgent_ATaskHeldByAnotherTransactionIsClaimedSoonAfter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := pgtest.New(t)
	store, a := newIdleAgent(t, url, 200*time.Millisecond)
	if err := a.Register(ctx); err != nil {
		t.Fatal(err)
	}
	tk := storetest.Task(t, store, sleeper)
	node := a.Node().ID
	placed := schedule(t, store, postgres.PassOpts{By: "test"}, storetest.OnNode(node))
	if placed != 1 {
		t.Fatalf("the pass placed %d tasks, want 1", placed)
	}
	// Another transaction holds the task while the agent comes up and
	// takes its first look.
	tx, err := storetest.Conn(t, url).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM tasks WHERE id = $1 FOR SHARE`, tk.ID); err != nil {
		t.Fatal(err)
	}
	defer runListening(t, ctx, a)()
	time.Sleep(500 * time.Millisecond)
	if got, _ := store.GetTask(ctx, tk.ID); got.State != queue.Scheduled {
		t.Fatalf("task is %s while held; want scheduled (the claim skips what another transaction holds)", got.State)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, store, tk.ID, "after it was released; the agent waits for its hourly poll")
}

// waitRunning fails the test unless the task is running within 10 s; why
// says what a miss would mean.
func waitRunning(t *testing.T, store *postgres.Store, id uuid.UUID, why string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, err := store.GetTask(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == queue.Running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task still %s 10 s %s", got.State, why)
		}
	}
}

// runListening runs the agent until the returned stop is called, once its
// LISTEN connection is up.
func runListening(t *testing.T, ctx context.Context, a *Agent) (stop func()) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	for !a.listening.Load() {
		if ctx.Err() != nil {
			cancel()
			<-done
			t.Fatal("the agent's LISTEN connection never came up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() { cancel(); <-done }
}

// newIdleAgent is an agent on the database at url that polls every poll
// while its LISTEN connection is down and hourly while it is up.
func newIdleAgent(t *testing.T, url string, poll time.Duration) (*postgres.Store, *Agent) {
	t.Helper()
	store := storetest.Open(t, url)
	return store, New(store, &MemRuntime{Behave: WorkloadBehavior}, Options{Name: "w1",
		Capacity:     queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30},
		PollInterval: poll, IdlePollInterval: time.Hour})
}

// sleeper is a task that runs until it is stopped.
var sleeper = queue.TaskSpec{Command: []string{"-sleep", "forever"}, RestartPolicy: queue.RestartNever,
	Resources: queue.Resources{CPUMillis: 100}}
