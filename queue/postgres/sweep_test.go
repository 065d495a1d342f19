package postgres

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestStore_MarkSilentNodesDown_OnlySilentNodes_AndTwiceIsHarmless(t *testing.T) {
	s, ctx := newStore(t)
	const timeout = time.Second
	// A node beating every 2 s may be silent for 2 s + timeout/2 (see
	// node_silence_allowed), and for that long after the server started
	// nobody is declared down (TestStore_MarkSilentNodesDown_NotRightAfterPostgresStarts).
	for serverUptime(t, s) < 2*time.Second+2*timeout {
		time.Sleep(100 * time.Millisecond)
	}
	silent := mustNode(t, s, "silent", roomyNode)
	alive := mustNode(t, s, "alive", roomyNode)
	exec(t, s, `UPDATE nodes SET last_heartbeat = now() - interval '1 minute' WHERE id = $1`, silent.ID)
	if _, err := s.Beat(ctx, alive.ID, NodeHealth{}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	marked := make([][]queue.Node, 3)
	for i := range marked {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var err error
			if marked[i], err = s.MarkSilentNodesDown(ctx, timeout); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	total := 0
	for _, m := range marked {
		for _, n := range m {
			total++
			if n.ID != silent.ID || n.State != queue.NodeDown {
				t.Errorf("marked %s (%s), want only the silent node, down", n.Name, n.State)
			}
		}
	}
	if total != 1 {
		t.Errorf("three racing sweeps marked %d nodes in all, want the silent one once", total)
	}
	if n, _ := s.GetNode(ctx, "alive"); n.State != queue.NodeReady {
		t.Errorf("the node that heartbeats is %s", n.State)
	}
	// Its agent comes back: the beat says the node had been given up.
	r, err := s.Beat(ctx, silent.ID, NodeHealth{}, 2*time.Second)
	if err != nil || r.Was != queue.NodeDown {
		t.Fatalf("beat after down = %+v, %v; want Was down", r, err)
	}
	if n, _ := s.GetNode(ctx, "silent"); n.State != queue.NodeReady {
		t.Errorf("after a beat the node is %s, want ready", n.State)
	}
}

func TestStore_MarkSilentNodesDown_NotRightAfterPostgresStarts(t *testing.T) {
	s, ctx := newStore(t)
	up := serverUptime(t, s)
	n := mustNode(t, s, "n1", roomyNode)
	// Silent for far longer than the timeout — but the server has been up
	// for less than the timeout, so the silence may be the server's own
	// absence: nobody is marked down yet.
	exec(t, s, `UPDATE nodes SET last_heartbeat = now() - interval '1 day' WHERE id = $1`, n.ID)
	marked, err := s.MarkSilentNodesDown(ctx, up+time.Hour)
	if err != nil || len(marked) != 0 {
		t.Fatalf("marked %v, %v; want nothing while the server is younger than the timeout", marked, err)
	}
}

func TestStore_EvacuateNode_MovesLiveTasksOnce_WithEvents_AndFencesTheOldAgent(t *testing.T) {
	s, ctx := newStore(t)
	lost := mustNode(t, s, "lost", roomyNode)
	other := mustNode(t, s, "other", roomyNode)
	req := queue.Resources{CPUMillis: 100, MemoryBytes: 10 << 20}

	run := running(t, s, lost.ID, queue.TaskSpec{Resources: req, RestartPolicy: queue.RestartNever})
	mustTask(t, s, req)
	pass(t, s, onNode(lost.ID))
	claim, _ := s.Claim(ctx, lost.ID, 10) // one starting
	if len(claim.Tasks) != 1 {
		t.Fatalf("claimed %d", len(claim.Tasks))
	}
	starting := claim.Tasks[0].Lease()
	sched := mustTask(t, s, req) // one scheduled, never claimed
	pass(t, s, onNode(lost.ID))

	// Not down yet: nothing moves.
	if n, why, err := s.EvacuateNode(ctx, lost.ID, time.Second); err != nil || n != 0 {
		t.Fatalf("evacuating a ready node moved %d (%s), %v", n, why, err)
	}
	exec(t, s, `UPDATE nodes SET state = 'down' WHERE id = $1`, lost.ID)
	ids, err := s.NodesToEvacuate(ctx, time.Second)
	if err != nil || len(ids) != 1 || ids[0] != lost.ID {
		t.Fatalf("nodes to evacuate = %v, %v", ids, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for i := 0; i < 3; i++ { // three replicas at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, _, err := s.EvacuateNode(ctx, lost.ID, time.Second)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 3 {
		t.Fatalf("racing evacuations moved %d tasks in all, want 3", total)
	}
	if r := reserved(t, s, lost.ID); r != (queue.Resources{}) {
		t.Errorf("lost node still reserves %+v", r)
	}
	for _, id := range []uuid.UUID{run.TaskID, starting.TaskID, sched.ID} {
		tk, _ := s.GetTask(ctx, id)
		if tk.State != queue.Pending || tk.NodeID != nil || tk.Restarts != 0 {
			t.Errorf("task %s after evacuation: %s node %v restarts %d", id, tk.State, tk.NodeID, tk.Restarts)
		}
		e := lastEvent(t, s, id)
		if e.To != queue.Pending || !strings.HasPrefix(e.Reason, "lost: node lost is down") || e.NodeID == nil || *e.NodeID != lost.ID {
			t.Errorf("event of task %s: %+v", id, e)
		}
	}
	ids, _ = s.NodesToEvacuate(ctx, time.Second)
	if len(ids) != 0 {
		t.Errorf("still to evacuate: %v", ids)
	}

	// The old agent wakes up and writes about its tasks: refused, nothing changes.
	if _, err := s.RecordExit(ctx, run, ExitReport{Code: 0}); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("exit from the lost node: %v, want ErrNotOwner", err)
	}
	if err := s.MarkRunning(ctx, starting, "late"); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("running from the lost node: %v, want ErrNotOwner", err)
	}
	// A new attempt elsewhere; the old lease stays fenced off.
	again := runAgain(t, s, other.ID, run.TaskID)
	if again.Attempt != run.Attempt+1 {
		t.Errorf("new attempt %d, want %d", again.Attempt, run.Attempt+1)
	}
	if err := s.SetTaskHealth(ctx, run, queue.HealthHealthy, "old"); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("health from the old lease: %v, want ErrNotOwner", err)
	}
	if _, err := s.RecordExit(ctx, run, ExitReport{Code: 1}); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("stale exit after the new attempt: %v, want ErrNotOwner", err)
	}
	if tk, _ := s.GetTask(ctx, run.TaskID); tk.State != queue.Running || tk.Attempt != again.Attempt {
		t.Errorf("stale writes changed the task: %s attempt %d", tk.State, tk.Attempt)
	}
}

func TestStore_EvacuateNode_FailingPullsAloneKeepTheTasks(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "pulls", roomyNode)
	l := running(t, s, n.ID, queue.TaskSpec{Resources: queue.Resources{CPUMillis: 100}})
	if _, err := s.Beat(ctx, n.ID, NodeHealth{Problem: "3 image pulls failed in a row"}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	exec(t, s, `UPDATE nodes SET state_changed_at = now() - interval '1 hour' WHERE id = $1`, n.ID)
	if ids, _ := s.NodesToEvacuate(ctx, time.Second); len(ids) != 0 {
		t.Errorf("a node whose engine answers but cannot pull is to be evacuated: %v", ids)
	}
	if moved, _, _ := s.EvacuateNode(ctx, n.ID, time.Second); moved != 0 {
		t.Errorf("moved %d running tasks off a node whose engine answers", moved)
	}
	if tk, _ := s.GetTask(ctx, l.TaskID); tk.State != queue.Running {
		t.Errorf("task is %s", tk.State)
	}
	if got, _ := s.GetNode(ctx, "pulls"); got.State != queue.NodeUnhealthy {
		t.Errorf("node is %s, want unhealthy (no new work)", got.State)
	}
}

func TestStore_EvacuateNode_UnhealthyOnlyAfterTheTimeout(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "sick", roomyNode)
	l := running(t, s, n.ID, queue.TaskSpec{Resources: queue.Resources{CPUMillis: 100}})
	if _, err := s.Beat(ctx, n.ID, NodeHealth{Problem: "docker engine: connection refused", EngineDown: true}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetNode(ctx, "sick")
	if got.State != queue.NodeUnhealthy || got.HealthError != "docker engine: connection refused" {
		t.Fatalf("node after a failing beat: %s %q", got.State, got.HealthError)
	}
	// No new work goes to an unhealthy node, even with a plan that insists.
	mustTask(t, s, queue.Resources{CPUMillis: 100})
	if res := pass(t, s, onNode(n.ID)); res.Placed != 0 {
		t.Errorf("placed %d tasks on an unhealthy node", res.Placed)
	}
	if moved, _, _ := s.EvacuateNode(ctx, n.ID, time.Minute); moved != 0 {
		t.Fatalf("moved %d tasks of a node unhealthy for less than the timeout", moved)
	}
	// Another beat while still failing does not restart the clock.
	exec(t, s, `UPDATE nodes SET engine_down_since = now() - interval '2 minutes' WHERE id = $1`, n.ID)
	if _, err := s.Beat(ctx, n.ID, NodeHealth{Problem: "docker engine: connection refused", EngineDown: true}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	moved, why, err := s.EvacuateNode(ctx, n.ID, time.Minute)
	if err != nil || moved != 1 || !strings.Contains(why, "unhealthy: docker engine: connection refused") {
		t.Fatalf("evacuating a node unhealthy for 2m: %d (%s), %v", moved, why, err)
	}
	if tk, _ := s.GetTask(ctx, l.TaskID); tk.State != queue.Pending {
		t.Errorf("task is %s", tk.State)
	}
}

// A task a user asked to stop whose node is then lost, or that its agent
// hands back, never goes back to the queue, where no pass would take it
// again: it ends stopped at once, with its reservation released.
func TestStore_StopRequested_EndsStoppedInsteadOfPending(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	cases := map[string]func(l queue.Lease){
		"its node is lost": func(l queue.Lease) {
			exec(t, s, `UPDATE nodes SET state = 'down' WHERE id = $1`, n.ID)
			if moved, _, err := s.EvacuateNode(ctx, n.ID, time.Second); err != nil || moved != 1 {
				t.Fatalf("evacuate: %d, %v", moved, err)
			}
			exec(t, s, `UPDATE nodes SET state = 'ready' WHERE id = $1`, n.ID)
		},
		"its node drains past its deadline": func(l queue.Lease) {
			if _, err := s.DrainNode(ctx, n.ID.String(), 0); err != nil {
				t.Fatal(err)
			}
			if moved, _, err := s.EvacuateNode(ctx, n.ID, time.Second); err != nil || moved != 1 {
				t.Fatalf("evacuate after the drain's deadline: %d, %v", moved, err)
			}
			if _, err := s.SetCordoned(ctx, n.ID.String(), false); err != nil {
				t.Fatal(err)
			}
		},
		"its agent hands it back": func(l queue.Lease) {
			if err := s.Requeue(ctx, l, "lost: docker engine failed"); err != nil {
				t.Fatal(err)
			}
		},
		"its agent loses touch with the database": func(l queue.Lease) {
			if _, err := s.RecordExit(ctx, l, ExitReport{Disconnected: true, Error: "out of touch for 3s"}); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, move := range cases {
		l := running(t, s, n.ID, queue.TaskSpec{RestartPolicy: queue.RestartAlways})
		if _, err := s.RequestStop(ctx, l.TaskID, "stopped by user"); err != nil {
			t.Fatal(err)
		}
		move(l)
		tk, err := s.GetTask(ctx, l.TaskID)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State != queue.Stopped || tk.FinishedAt == nil {
			t.Errorf("%s: the task is %s, want stopped", name, tk.State)
		}
		if e := lastEvent(t, s, l.TaskID); e.To != queue.Stopped {
			t.Errorf("%s: last event %s → %s (%s)", name, e.From, e.To, e.Reason)
		}
		if r := reserved(t, s, n.ID); r != (queue.Resources{}) {
			t.Errorf("%s: node still reserves %+v", name, r)
		}
	}
	// And a pass finds nothing stuck at the head of the queue.
	if res := pass(t, s, onNode(n.ID)); res.Considered != 0 {
		t.Errorf("a pass considered %d tasks, want none", res.Considered)
	}
}
