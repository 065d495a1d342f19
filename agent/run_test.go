package agent

import (
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
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
