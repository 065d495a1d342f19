package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

func TestStore_ReadRetriedWhileDatabaseAway_AndLastAwaySaysSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	proxy, via := pgtest.NewProxy(t, newURL(t))
	s := openStore(t, via)
	mustNode(t, s, "n1", roomyNode)
	if !s.LastAway().IsZero() {
		t.Fatalf("LastAway before any outage: %v", s.LastAway())
	}

	cut := time.Now()
	proxy.Cut()
	back := make(chan struct{})
	time.AfterFunc(500*time.Millisecond, func() { proxy.Restore(); close(back) })
	nodes, err := s.ListNodes(ctx)
	<-back
	if err != nil || len(nodes) != 1 {
		t.Fatalf("listing nodes across a half-second outage: %v, %v", nodes, err)
	}
	if away := s.LastAway(); away.Before(cut) {
		t.Errorf("LastAway = %v, want after the cut at %v: the retried call hid the outage", away, cut)
	}
}

func TestStore_CreateTask_AnswerLostAfterCommit_OneTaskNoError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	proxy, via := pgtest.NewProxy(t, newURL(t))
	s := openStore(t, via)
	// The insert commits, its answer never comes back and the connection
	// breaks, as when the primary dies right after a commit that reached
	// its synchronous standby.
	proxy.LoseReplyTo([]byte("lost-answer"))
	tk, err := s.CreateTask(ctx, uuid.Nil, queue.TaskSpec{Name: "lost-answer", Image: "alpine", RestartPolicy: queue.RestartNever})
	if err != nil {
		t.Fatalf("a create whose answer was lost: %v", err)
	}
	if proxy.Lost() != 1 {
		t.Fatalf("answers lost: %d, want 1", proxy.Lost())
	}
	all, err := s.ListTasks(ctx, TaskFilter{})
	if err != nil || len(all) != 1 || all[0].ID != tk.ID || all[0].Name != "lost-answer" {
		t.Errorf("tasks: %+v (%v), want the one created", all, err)
	}
	if evs, err := s.Events(ctx, tk.ID); err != nil || len(evs) != 1 {
		t.Errorf("events of the task: %d (%v), want 1", len(evs), err)
	}
}
