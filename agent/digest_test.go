package agent

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// An idle agent whose wake-ups come asks the database nothing on its
// safety net, and reconciles by listing its containers alone, while its
// heartbeats find nothing new.
func TestAgent_IdleSafetyNetAsksNothingWhileBeatsFindNothingNew(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := storetest.Open(t, pgtest.New(t))
	a := New(store, &MemRuntime{Behave: WorkloadBehavior}, Options{Name: "w1",
		Capacity:          queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30},
		HeartbeatInterval: 50 * time.Millisecond, PollInterval: 50 * time.Millisecond,
		IdlePollInterval: 50 * time.Millisecond, ReconcileInterval: 50 * time.Millisecond})
	defer runListening(t, ctx, a)()
	m := a.obs.metrics
	for !a.quiet.Load() {
		if ctx.Err() != nil {
			t.Fatal("no heartbeat found the idle node quiet")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Safety net and reconcile every 150 ms (three beats), a full reconcile
	// every 1.5 s at the most: over 1.4 s about nine of each are due.
	polls, skipped := testutil.ToFloat64(m.steps.WithLabelValues("poll")), testutil.ToFloat64(m.skipped)
	quick, full := testutil.ToFloat64(m.reconciles.WithLabelValues("quick")), testutil.ToFloat64(m.reconciles.WithLabelValues("full"))
	time.Sleep(1400 * time.Millisecond)
	polls, skipped = testutil.ToFloat64(m.steps.WithLabelValues("poll"))-polls, testutil.ToFloat64(m.skipped)-skipped
	quick, full = testutil.ToFloat64(m.reconciles.WithLabelValues("quick"))-quick, testutil.ToFloat64(m.reconciles.WithLabelValues("full"))-full
	if polls != 0 || skipped < 4 {
		t.Errorf("over 1.4 s idle: %v safety-net rounds asked the database, %v asked nothing; want 0 and several", polls, skipped)
	}
	if quick < 4 || full > 1 {
		t.Errorf("over 1.4 s idle: %v quick and %v full reconciles; want several quick and at most one full", quick, full)
	}

	// Work announced as usual still comes at once.
	placeAndRun(t, store, a)
}

// A wake-up that never came (the notification was lost, or the placement
// sent none) is made up for by the next heartbeat, which finds a task
// waiting on the node: within a beat, not at the next safety-net poll.
func TestAgent_AMissedWakeUpIsMadeUpForByTheNextHeartbeat(t *testing.T) {
	ctx, url, store, a := beatingAgent(t)
	tk := storetest.Task(t, store, sleeper)
	// Placed behind the agent's back: no notification.
	if _, err := storetest.Conn(t, url).Exec(ctx,
		`UPDATE tasks SET state = 'scheduled', node_id = $2, scheduled_at = now() WHERE id = $1`, tk.ID, a.Node().ID); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, store, tk.ID, "after an unannounced placement; the agent polls hourly and beats every 200 ms")
}

// The digest holds the leases the agent watches: a lease taken away
// behind its back (another node now runs the task) is noticed at the next
// beat, and its container removed.
func TestAgent_ALeaseTakenAwayUnannouncedIsNoticedAtTheNextBeat(t *testing.T) {
	ctx, url, store, a := beatingAgent(t)
	rt := a.rt.(*MemRuntime)
	tk := placeAndRun(t, store, a)
	// The task goes back to the queue without a word to the agent, as a
	// coordinator's move would look to an agent that missed it.
	if _, err := storetest.Conn(t, url).Exec(ctx,
		`UPDATE tasks SET state = 'pending', node_id = NULL, attempt = attempt + 1 WHERE id = $1`, tk.ID); err != nil {
		t.Fatal(err)
	}
	live := func() int {
		cs, err := rt.List(ctx, map[string]string{LabelNode: a.Node().ID.String()})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	for deadline := time.Now().Add(10 * time.Second); live() > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the container of a lease taken away still runs 10 s later (the agent polls hourly, beats every 200 ms)")
		}
	}
}

// beatingAgent runs, for the test, an agent that polls hourly, beats every
// 200 ms and is listening; it returns the test's context and the database.
func beatingAgent(t *testing.T) (context.Context, string, *postgres.Store, *Agent) {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	url := pgtest.New(t)
	store, a := newIdleAgent(t, url, time.Hour)
	a.opts.HeartbeatInterval = 200 * time.Millisecond
	t.Cleanup(runListening(t, ctx, a))
	return ctx, url, store, a
}

// placeAndRun submits a sleeper, places it on a's node and waits for it to run.
func placeAndRun(t *testing.T, store *postgres.Store, a *Agent) queue.Task {
	t.Helper()
	tk := storetest.Task(t, store, sleeper)
	if placed := schedule(t, store, postgres.PassOpts{By: "test"}, storetest.OnNode(a.Node().ID)); placed != 1 {
		t.Fatalf("the pass placed %d tasks, want 1", placed)
	}
	waitRunning(t, store, tk.ID, "after placement")
	return tk
}
