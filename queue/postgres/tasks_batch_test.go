package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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

// A batch sent again with its ids gets back the tasks it made, and makes
// only the ones that are new.
func TestStore_SubmitTasks_ResubmittedBatchReturnsTheStoredTasks(t *testing.T) {
	s, ctx := newStore(t)
	batch := make([]NewTask, 3)
	for i := range batch {
		batch[i] = NewTask{ID: uuid.Must(uuid.NewV7()), Spec: queue.TaskSpec{Image: "app:1", Name: fmt.Sprintf("web-%d", i+1)}}
		batch[i].Spec.Normalize()
	}
	first, created, err := s.SubmitTasks(ctx, batch[:2], CreateOpts{})
	if err != nil || !created[0] || !created[1] {
		t.Fatalf("first submit: created %v, %v", created, err)
	}
	again, created, err := s.SubmitTasks(ctx, batch, CreateOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if created[0] || created[1] || !created[2] {
		t.Errorf("created %v, want [false false true]", created)
	}
	for i := range 2 {
		if again[i].ID != first[i].ID || again[i].Name != first[i].Name {
			t.Errorf("task [%d] answered %s %s, want the stored %s %s", i, again[i].ID, again[i].Name, first[i].ID, first[i].Name)
		}
	}
	if again[2].ID != batch[2].ID || again[2].Name != "web-3" || again[2].State != queue.Pending {
		t.Errorf("new task answered %+v", again[2])
	}
	if n := countTasks(t, s); n != 3 {
		t.Errorf("%d tasks, want 3", n)
	}
	if evs, _ := s.Events(ctx, batch[0].ID); len(evs) != 1 {
		t.Errorf("the resubmitted task has %d events, want its one 'created'", len(evs))
	}
}

// A batch with one task whose id or name is taken stores nothing and says
// which task it was.
func TestStore_SubmitTasks_TakenIDOrNameFailsTheWholeBatch(t *testing.T) {
	s, ctx := newStore(t)
	spec := func(name string) queue.TaskSpec {
		sp := queue.TaskSpec{Image: "app:1", Name: name}
		sp.Normalize()
		return sp
	}
	web, err := s.CreateTask(ctx, uuid.Nil, spec("web"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		batch []NewTask
		at    int
		says  string
	}{
		{"a live name", []NewTask{{Spec: spec("a")}, {Spec: spec("web")}}, 1, web.ID.String()},
		{"a name twice in the batch", []NewTask{{Spec: spec("b")}, {Spec: spec("c")}, {Spec: spec("c")}}, 2, "is named c"},
		{"an id with another spec", []NewTask{{Spec: spec("d")}, {ID: web.ID, Spec: spec("other")}}, 1, "another spec"},
	}
	for _, c := range cases {
		_, _, err := s.SubmitTasks(ctx, c.batch, CreateOpts{})
		var ie *queue.ItemError
		if !errors.As(err, &ie) || ie.Index != c.at || !errors.Is(err, queue.ErrConflict) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want a conflict of task [%d] saying %q", c.name, err, c.at, c.says)
		}
		if _, err := s.CreateTasks(ctx, c.batch, CreateOpts{}); !errors.Is(err, queue.ErrConflict) {
			t.Errorf("%s: CreateTasks: %v, want a conflict", c.name, err)
		}
	}
	// CreateTasks takes no resubmission: the same spec under a taken id is
	// a conflict too, and a single create's error names no index.
	if _, err := s.CreateTasks(ctx, []NewTask{{ID: web.ID, Spec: spec("web")}}, CreateOpts{}); !errors.Is(err, queue.ErrConflict) {
		t.Errorf("CreateTasks with a taken id and the same spec: %v, want a conflict", err)
	}
	if _, err := s.CreateTask(ctx, uuid.Nil, spec("web")); !errors.Is(err, queue.ErrConflict) || strings.HasPrefix(err.Error(), "[") {
		t.Errorf("CreateTask with a live name: %v, want a conflict without an index", err)
	}
	if n := countTasks(t, s); n != 1 {
		t.Errorf("%d tasks, want only the first", n)
	}
}

func countTasks(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM tasks`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A job's tasks are made by the same statement, with their job, version
// and index, the event that says which version made them, and a
// replacement's backoff as not_before.
func TestStore_CreateTasks_JobTasksGoThroughTheSameStatement(t *testing.T) {
	s, ctx := newStore(t)
	j, _ := submit(t, s, "name: web\ncount: 1\ntask: {image: busybox}")
	if res := reconcile(t, s, j.ID); res.Created != 1 {
		t.Fatalf("reconcile: %+v", res)
	}
	made := jobTasks(t, s, j.ID)[0]
	if evs, _ := s.Events(ctx, made.ID); len(evs) != 1 || evs[0].Reason != "created by job version 1" {
		t.Errorf("events of %s: %+v", made.Name, evs)
	}
	if made.NotBefore != nil {
		t.Errorf("a new job task is held back until %v", made.NotBefore)
	}
	spec := queue.TaskSpec{Name: "web.0", Image: "busybox"} // the live web.0's name: job tasks may share one
	spec.Normalize()
	rows, err := rowsOf([]NewTask{{Spec: spec, job: &jobTask{ID: j.ID, Version: 1, Index: 0, Delay: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := insertTasks(ctx, s.pool, insertTasksSQL, rows)
	if err != nil {
		t.Fatal(err)
	}
	if r := ts[0]; r.JobID == nil || *r.JobID != j.ID || r.NotBefore == nil || time.Until(*r.NotBefore) < 59*time.Minute {
		t.Errorf("replacement: job %v, not before %v; want job %s, an hour from now", r.JobID, r.NotBefore, j.ID)
	}
}
