package postgres

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// A batch is stored in one go, each task as CreateTask would store it.
func TestStore_CreateTasks_StoresTheBatchAsOneByOneWould(t *testing.T) {
	s, ctx := newStore(t)
	hc := &queue.HealthCheck{Type: queue.HealthTCP, Port: 80}
	spec := queue.TaskSpec{Image: "app:1", Command: []string{"-sleep", "1s"}, Env: map[string]string{"A": "b"},
		Labels: map[string]string{"team": "x"}, Resources: queue.Resources{CPUMillis: 250, MemoryBytes: 64 << 20},
		Ports: []queue.Port{{ContainerPort: 80}}, Constraints: []queue.Constraint{{Key: "zone", Op: "=", Value: "eu"}},
		HealthCheck: hc, RestartPolicy: queue.RestartOnFailure, MaxRestarts: 3, Secrets: map[string]string{"K": "v"},
		PidsLimit: 64}
	spec.Normalize()
	batch := make([]NewTask, 50)
	for i := range batch {
		batch[i] = NewTask{Spec: spec, SealedSecrets: []byte{1, 2, 3}}
	}
	batch[7].ID = uuid.Must(uuid.NewV7())
	got, err := s.CreateTasks(ctx, batch, CreateOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 || got[7].ID != batch[7].ID {
		t.Fatalf("%d tasks back; the 8th is %s, want %s", len(got), got[7].ID, batch[7].ID)
	}
	one, err := s.CreateTask(ctx, uuid.Nil, spec, CreateOpts{SealedSecrets: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range got {
		stored, err := s.GetTask(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := s.GetTask(ctx, one.ID)
		stored.ID, stored.Name, stored.CreatedAt, stored.UpdatedAt = ref.ID, ref.Name, ref.CreatedAt, ref.UpdatedAt
		if a, b := jsonOf(t, stored), jsonOf(t, ref); a != b {
			t.Fatalf("batch task differs from a single one:\n%s\n%s", a, b)
		}
		if evs, _ := s.Events(ctx, tk.ID); len(evs) != 1 || evs[0].To != queue.Pending {
			t.Fatalf("events %+v", evs)
		}
		var sealed []byte
		if err := s.pool.QueryRow(ctx, `SELECT sealed FROM task_secrets WHERE task_id = $1`, tk.ID).Scan(&sealed); err != nil || string(sealed) != "\x01\x02\x03" {
			t.Fatalf("sealed secrets %v, %v", sealed, err)
		}
	}
	if _, err := s.CreateTasks(ctx, []NewTask{{ID: batch[7].ID, Spec: spec, SealedSecrets: []byte{1}}}, CreateOpts{}); err == nil {
		t.Error("a batch reusing an id was stored")
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
