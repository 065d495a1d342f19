package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

func TestStore_DrainNode(t *testing.T) {
	s, ctx := newStore(t)
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
