package postgres

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestStore_Lifecycle_OneEventPerChange_AndReservationsReleased(t *testing.T) {
	s, ctx := newStore(t)
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30})
	req := queue.Resources{CPUMillis: 500, MemoryBytes: 100 << 20, DiskBytes: 1 << 20}
	task := mustTask(t, s, req)

	if res := pass(t, s, firstFit); res.Placed != 1 {
		t.Fatalf("pass = %+v", res)
	}
	if got := reserved(t, s, node.ID); got != req {
		t.Fatalf("reserved after placing = %+v, want %+v", got, req)
	}
	claim, err := s.Claim(ctx, node.ID, 10)
	if err != nil || len(claim.Tasks) != 1 || claim.Tasks[0].State != queue.Starting || claim.Tasks[0].Attempt != 1 {
		t.Fatalf("claim = %+v, %v", claim.Tasks, err)
	}
	lease := claim.Tasks[0].Lease()
	if err := s.MarkRunning(ctx, lease, "c1"); err != nil {
		t.Fatal(err)
	}
	to, err := s.RecordExit(ctx, lease, ExitReport{Code: 3})
	if err != nil || to != queue.Failed {
		t.Fatalf("exit 3 → %s, %v", to, err)
	}
	got, _ := s.GetTask(ctx, task.ID)
	if got.State != queue.Failed || got.ExitCode == nil || *got.ExitCode != 3 || got.FinishedAt == nil || got.ContainerID != "c1" {
		t.Errorf("after exit: %+v", got)
	}
	if r := reserved(t, s, node.ID); r != (queue.Resources{}) {
		t.Errorf("reserved after the task ended = %+v, want nothing", r)
	}
	evs, _ := s.Events(ctx, task.ID)
	want := []queue.State{queue.Pending, queue.Scheduled, queue.Starting, queue.Running, queue.Failed}
	if len(evs) != len(want) {
		t.Fatalf("events %+v, want %v", evs, want)
	}
	for i, e := range evs {
		if e.To != want[i] || (i > 0 && e.From != want[i-1]) {
			t.Errorf("event %d = %s→%s, want %s", i, e.From, e.To, want[i])
		}
	}
	if ec := evs[4].ExitCode; ec == nil || *ec != 3 {
		t.Errorf("exit event has no exit code: %+v", evs[4])
	}
}

func TestStore_FencedWrite_StaleLeaseChangesNothing(t *testing.T) {
	s, ctx := newStore(t)
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30})
	task := mustTask(t, s, queue.Resources{CPUMillis: 100})
	pass(t, s, firstFit)
	claim, _ := s.Claim(ctx, node.ID, 1)
	stale := claim.Tasks[0].Lease()
	stale.Attempt--
	if err := s.MarkRunning(ctx, stale, "c"); !errors.Is(err, queue.ErrNotOwner) {
		t.Fatalf("stale attempt: %v, want ErrNotOwner", err)
	}
	other := claim.Tasks[0].Lease()
	other.NodeID = uuid.New()
	if _, err := s.RecordExit(ctx, other, ExitReport{Code: 0}); !errors.Is(err, queue.ErrNotOwner) {
		t.Fatalf("other node: %v, want ErrNotOwner", err)
	}
	got, _ := s.GetTask(ctx, task.ID)
	if got.State != queue.Starting || got.ContainerID != "" {
		t.Errorf("stale writes changed the task: %+v", got)
	}
}

func TestStore_RecordExit_RestartPolicies(t *testing.T) {
	s, ctx := newStore(t)
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
	s, ctx := newStore(t)
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

func TestStore_Restart_BackoffDoubles_AndStartsOverAfterALongRun(t *testing.T) {
	s, ctx := newStore(t)
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
		exec(t, s, `UPDATE tasks SET not_before = NULL, queued_at = now() WHERE id = $1`, l.TaskID) // skip the wait
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

// An agent whose write committed but whose answer was lost (a dropped
// connection, a restarting server) writes again with the same lease. The
// repeat succeeds and changes nothing; the same lease with another
// container is still refused.
func TestStore_AgentWrites_RepeatedAfterALostAnswerChangeNothing(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	l := running(t, s, n.ID, queue.TaskSpec{})
	before, err := s.Events(ctx, l.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	container := "c-" + l.TaskID.String()[:8]
	if err := s.MarkRunning(ctx, l, container); err != nil {
		t.Fatalf("running again with the same container: %v", err)
	}
	if err := s.MarkRunning(ctx, l, "another-container"); err == nil {
		t.Error("running again with another container was accepted")
	}
	if after, _ := s.Events(ctx, l.TaskID); len(after) != len(before) {
		t.Errorf("the repeat wrote %d events", len(after)-len(before))
	}
	if tk, _ := s.GetTask(ctx, l.TaskID); tk.State != queue.Running || tk.ContainerID != container {
		t.Errorf("task %s with container %s", tk.State, tk.ContainerID)
	}
	if to, err := s.RecordExit(ctx, l, ExitReport{Code: 0}); err != nil || to != queue.Completed {
		t.Fatalf("exit: %s, %v", to, err)
	}
	ended, _ := s.Events(ctx, l.TaskID)
	if to, err := s.RecordExit(ctx, l, ExitReport{Code: 0}); err != nil || to != queue.Completed {
		t.Errorf("exit again: %s, %v; want completed, no error", to, err)
	}
	if again, _ := s.Events(ctx, l.TaskID); len(again) != len(ended) {
		t.Errorf("the repeated exit wrote %d events", len(again)-len(ended))
	}
	if r := reserved(t, s, n.ID); r != (queue.Resources{}) {
		t.Errorf("reservations after the repeats: %+v", r)
	}
}
