package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

var roomyNode = queue.Resources{CPUMillis: 4000, MemoryBytes: 4 << 30, DiskBytes: 4 << 30}

// onNode is a plan that puts every task on one chosen node.
func onNode(id uuid.UUID) PlanFunc {
	return func(tasks []queue.Task, _ queue.Snapshot) queue.Plan {
		p := queue.Plan{Unplaced: map[uuid.UUID]string{}}
		for _, t := range tasks {
			p.Placements = append(p.Placements, queue.Placement{TaskID: t.ID, NodeID: id})
		}
		return p
	}
}

// running creates a task and takes it to running on node; it returns the lease.
func running(t *testing.T, s *Store, node uuid.UUID, spec queue.TaskSpec) queue.Lease {
	t.Helper()
	ctx := context.Background()
	if spec.Image == "" {
		spec.Image = "alpine"
	}
	spec.Normalize()
	tk, err := s.CreateTask(ctx, uuid.Nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	return runAgain(t, s, node, tk.ID)
}

// runAgain places a pending task on node, claims it and marks it running.
func runAgain(t *testing.T, s *Store, node, task uuid.UUID) queue.Lease {
	t.Helper()
	ctx := context.Background()
	if res := pass(t, s, onNode(node)); res.Placed < 1 {
		t.Fatalf("pass placed nothing: %+v", res)
	}
	claim, err := s.Claim(ctx, node, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claim.Tasks {
		if c.ID == task {
			l := c.Lease()
			if err := s.MarkRunning(ctx, l, "c-"+task.String()[:8]); err != nil {
				t.Fatal(err)
			}
			return l
		}
	}
	t.Fatalf("task %s was not claimed on node %s (claimed %d)", task, node, len(claim.Tasks))
	return queue.Lease{}
}

func lastEvent(t *testing.T, s *Store, id uuid.UUID) queue.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), id)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events of %s: %v (%d)", id, err, len(evs))
	}
	return evs[len(evs)-1]
}

func exec(t *testing.T, s *Store, sql string, args ...any) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// serverUptime is how long the test's PostgreSQL server has been up.
func serverUptime(t *testing.T, s *Store) time.Duration {
	t.Helper()
	var secs float64
	if err := s.pool.QueryRow(context.Background(), `SELECT extract(epoch FROM now() - pg_postmaster_start_time())::float8`).Scan(&secs); err != nil {
		t.Fatal(err)
	}
	return time.Duration(secs * float64(time.Second))
}

func TestStore_MarkSilentNodesDown_OnlySilentNodes_AndTwiceIsHarmless(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	const timeout = time.Second
	for serverUptime(t, s) < 2*timeout { // see TestStore_MarkSilentNodesDown_NotRightAfterPostgresStarts
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
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
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
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
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
	if _, err := s.MarkExited(ctx, run, 0, "", false); !errors.Is(err, queue.ErrNotOwner) {
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
	if _, err := s.MarkExited(ctx, run, 1, "", false); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("stale exit after the new attempt: %v, want ErrNotOwner", err)
	}
	if tk, _ := s.GetTask(ctx, run.TaskID); tk.State != queue.Running || tk.Attempt != again.Attempt {
		t.Errorf("stale writes changed the task: %s attempt %d", tk.State, tk.Attempt)
	}
}

func TestStore_EvacuateNode_FailingPullsAloneKeepTheTasks(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
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
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
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

func TestStore_RecordExit_RestartPolicies(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	n := mustNode(t, s, "n1", roomyNode)
	backoff := queue.Backoff{Base: 2 * time.Second, Max: time.Minute}
	for name, tc := range map[string]struct {
		policy   queue.RestartPolicy
		max      int
		restarts int // restarts the task has had already
		report   ExitReport
		want     queue.State
	}{
		"never, exit 0":                {queue.RestartNever, 0, 0, ExitReport{Code: 0}, queue.Completed},
		"never, exit 1":                {queue.RestartNever, 5, 0, ExitReport{Code: 1}, queue.Failed},
		"never, start failed":          {queue.RestartNever, 5, 0, ExitReport{StartFailed: true, Error: "no such image"}, queue.Failed},
		"on-failure, exit 0":           {queue.RestartOnFailure, 3, 0, ExitReport{Code: 0}, queue.Completed},
		"on-failure, exit 1":           {queue.RestartOnFailure, 3, 0, ExitReport{Code: 1}, queue.Pending},
		"on-failure, unhealthy":        {queue.RestartOnFailure, 3, 0, ExitReport{Code: 0, Unhealthy: true, Error: "HTTP 503"}, queue.Pending},
		"on-failure, start failed":     {queue.RestartOnFailure, 3, 0, ExitReport{StartFailed: true, Error: "port taken"}, queue.Pending},
		"on-failure, limit reached":    {queue.RestartOnFailure, 3, 3, ExitReport{Code: 1}, queue.Failed},
		"on-failure, 0 means no limit": {queue.RestartOnFailure, 0, 40, ExitReport{Code: 1}, queue.Pending},
		"always, exit 0":               {queue.RestartAlways, 2, 1, ExitReport{Code: 0}, queue.Pending},
		"always, limit reached":        {queue.RestartAlways, 2, 2, ExitReport{Code: 0}, queue.Completed},
		"always, but stopped":          {queue.RestartAlways, 0, 0, ExitReport{Code: 0, Stopped: true}, queue.Stopped},
		"always, but drained":          {queue.RestartAlways, 1, 1, ExitReport{Code: 0, Evicted: true}, queue.Pending},
	} {
		l := running(t, s, n.ID, queue.TaskSpec{Name: strings.NewReplacer(" ", "-", ",", "").Replace(name), RestartPolicy: tc.policy, MaxRestarts: tc.max})
		exec(t, s, `UPDATE tasks SET restarts = $2, backoff_step = $2 WHERE id = $1`, l.TaskID, tc.restarts)
		tc.report.Backoff = backoff
		got, err := s.RecordExit(ctx, l, tc.report)
		if err != nil || got != tc.want {
			t.Errorf("%s: RecordExit → %s, %v; want %s", name, got, err, tc.want)
			continue
		}
		tk, _ := s.GetTask(ctx, l.TaskID)
		e := lastEvent(t, s, l.TaskID)
		restarted := tc.want == queue.Pending && !tc.report.Evicted
		wantRestarts := tc.restarts
		if restarted {
			wantRestarts++
		}
		if tk.State != tc.want || tk.Restarts != wantRestarts || e.To != tc.want || e.Attempt != l.Attempt {
			t.Errorf("%s: task %s restarts %d, event %s attempt %d; want %s, %d restarts", name, tk.State, tk.Restarts, e.To, e.Attempt, tc.want, wantRestarts)
		}
		switch {
		case restarted:
			delay := backoff.Delay(tc.restarts)
			if tk.NotBefore == nil || tk.NotBefore.Sub(tk.UpdatedAt) < delay-10*time.Millisecond || tk.NotBefore.Sub(tk.UpdatedAt) > delay+10*time.Millisecond {
				t.Errorf("%s: not_before %v, updated %v, want %s later", name, tk.NotBefore, tk.UpdatedAt, delay)
			}
			if !strings.Contains(e.Reason, "; restart ") || !strings.Contains(e.Reason, " in "+delay.String()) {
				t.Errorf("%s: restart event reason %q", name, e.Reason)
			}
		case tc.want == queue.Pending:
			if tk.NotBefore != nil || !strings.Contains(e.Reason, "draining") {
				t.Errorf("%s: a drained task waits until %v, reason %q", name, tk.NotBefore, e.Reason)
			}
		case tc.report.StartFailed:
			if tk.Error != tc.report.Error || tk.ExitCode != nil {
				t.Errorf("%s: error %q exit %v", name, tk.Error, tk.ExitCode)
			}
		default:
			if tk.ExitCode == nil || *tk.ExitCode != tc.report.Code {
				t.Errorf("%s: exit code %v, want %d", name, tk.ExitCode, tc.report.Code)
			}
		}
	}
}

func TestStore_Restart_WaitsOutItsBackoffInTheQueue(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	n := mustNode(t, s, "n1", roomyNode)
	l := running(t, s, n.ID, queue.TaskSpec{RestartPolicy: queue.RestartOnFailure, MaxRestarts: 2})
	const delay = 1500 * time.Millisecond
	if _, err := s.RecordExit(ctx, l, ExitReport{Code: 2, Backoff: queue.Backoff{Base: delay, Max: delay}}); err != nil {
		t.Fatal(err)
	}
	if res := pass(t, s, onNode(n.ID)); res.Considered != 0 {
		t.Fatalf("a pass took a restart before its backoff: %+v", res)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pass(t, s, onNode(n.ID)).Placed == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the restart was never placed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	tk, _ := s.GetTask(ctx, l.TaskID)
	if tk.State != queue.Scheduled || tk.Attempt != l.Attempt+1 || tk.Restarts != 1 {
		t.Fatalf("after the backoff: %s attempt %d restarts %d", tk.State, tk.Attempt, tk.Restarts)
	}
	evs, _ := s.Events(ctx, l.TaskID)
	var restartAt, placedAt time.Time
	for _, e := range evs {
		if e.From == queue.Running && e.To == queue.Pending {
			restartAt = e.At
		}
		if e.To == queue.Scheduled && e.Attempt == l.Attempt+1 {
			placedAt = e.At
		}
	}
	if gap := placedAt.Sub(restartAt); gap < delay {
		t.Errorf("placed %s after the exit, want at least the backoff %s", gap, delay)
	}
}

func TestStore_DrainNode(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	n := mustNode(t, s, "drained", roomyNode)
	run := running(t, s, n.ID, queue.TaskSpec{Resources: queue.Resources{CPUMillis: 100}})
	sched := mustTask(t, s, queue.Resources{CPUMillis: 100})
	pass(t, s, onNode(n.ID))

	got, err := s.DrainNode(ctx, "drained", time.Minute)
	if err != nil || !got.Draining || !got.Cordoned || got.DrainDeadline == nil || got.LiveTasks != 1 {
		t.Fatalf("drain → %+v, %v", got, err)
	}
	// The unclaimed task left at once; the running one waits for its agent.
	if tk, _ := s.GetTask(ctx, sched.ID); tk.State != queue.Pending || !strings.Contains(lastEvent(t, s, sched.ID).Reason, "draining") {
		t.Errorf("scheduled task after drain: %s", tk.State)
	}
	if tk, _ := s.GetTask(ctx, run.TaskID); tk.State != queue.Running {
		t.Errorf("running task after drain: %s", tk.State)
	}
	if res := pass(t, s, onNode(n.ID)); res.Placed != 0 {
		t.Errorf("placed %d tasks on a draining node", res.Placed)
	}
	if ids, _ := s.NodesToEvacuate(ctx, time.Second); len(ids) != 0 {
		t.Errorf("evacuating before the deadline: %v", ids)
	}
	// The agent hands the running task back.
	if to, err := s.RecordExit(ctx, run, ExitReport{Code: 0, Evicted: true}); err != nil || to != queue.Pending {
		t.Fatalf("evicted exit → %s, %v", to, err)
	}
	if got, _ := s.GetNode(ctx, "drained"); got.LiveTasks != 0 || got.Reserved != (queue.Resources{}) {
		t.Errorf("drained node still holds %d tasks, %+v", got.LiveTasks, got.Reserved)
	}

	// Uncordoning ends the drain; a drain with deadline 0 then moves
	// whatever runs there at the next sweep.
	if got, err := s.SetCordoned(ctx, "drained", false); err != nil || got.Draining || got.Cordoned || got.DrainDeadline != nil {
		t.Fatalf("uncordon → %+v, %v", got, err)
	}
	run2 := running(t, s, n.ID, queue.TaskSpec{Name: "second"})
	before, err := s.DrainNode(ctx, "drained", 0)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := s.NodesToEvacuate(ctx, time.Second)
	if len(ids) != 1 {
		t.Fatalf("nodes to evacuate after a drain with deadline 0: %v", ids)
	}
	moved, why, err := s.EvacuateNode(ctx, n.ID, time.Second)
	if err != nil || moved != before.LiveTasks || moved == 0 || !strings.Contains(why, "deadline passed") {
		t.Fatalf("evacuate: %d (%s), %v", moved, why, err)
	}
	if tk, _ := s.GetTask(ctx, run2.TaskID); tk.State != queue.Pending || tk.Restarts != 0 {
		t.Errorf("task after the deadline: %s restarts %d", tk.State, tk.Restarts)
	}
}

func TestStore_Restart_BackoffDoubles_AndStartsOverAfterALongRun(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	n := mustNode(t, s, "n1", roomyNode)
	l := running(t, s, n.ID, queue.TaskSpec{RestartPolicy: queue.RestartOnFailure})
	b := queue.Backoff{Base: time.Second, Max: time.Minute, Reset: time.Hour}
	crash := func(wantDelay string) {
		t.Helper()
		if _, err := s.RecordExit(ctx, l, ExitReport{Code: 1, Backoff: b}); err != nil {
			t.Fatal(err)
		}
		if e := lastEvent(t, s, l.TaskID); !strings.HasSuffix(e.Reason, " in "+wantDelay) {
			t.Errorf("restart event %q, want a delay of %s", e.Reason, wantDelay)
		}
		exec(t, s, `UPDATE tasks SET not_before = NULL WHERE id = $1`, l.TaskID) // skip the wait
		l = runAgain(t, s, n.ID, l.TaskID)
	}
	crash("1s")
	crash("2s")
	crash("4s")
	// This attempt runs for more than the reset time before it crashes.
	exec(t, s, `UPDATE tasks SET started_at = now() - interval '2 hours' WHERE id = $1`, l.TaskID)
	crash("1s")
	crash("2s")
	if tk, _ := s.GetTask(ctx, l.TaskID); tk.Restarts != 5 {
		t.Errorf("restarts = %d, want 5: starting the backoff over does not forget them", tk.Restarts)
	}
}
