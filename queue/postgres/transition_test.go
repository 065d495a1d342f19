package postgres

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestTransition_RefusesInvalidAndWritesNothing(t *testing.T) {
	s, ctx := newStore(t)
	task := mustTask(t, s, queue.Resources{})
	_, _, err := transition(ctx, s.pool, stateChange{TaskID: task.ID, To: queue.Running})
	if !errors.Is(err, queue.ErrInvalidTransition) {
		t.Fatalf("pending → running: %v, want ErrInvalidTransition", err)
	}
	got, _ := s.GetTask(ctx, task.ID)
	evs, _ := s.Events(ctx, task.ID)
	if got.State != queue.Pending || len(evs) != 1 {
		t.Errorf("refused change left state %s and %d events", got.State, len(evs))
	}
	if _, _, err := transition(ctx, s.pool, stateChange{TaskID: uuid.New(), To: queue.Stopped}); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("unknown task: %v, want ErrNotFound", err)
	}
}
