package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestStore_CreateTask_StoresSpecAndCreatedEvent(t *testing.T) {
	s, ctx := newStore(t)
	spec := queue.TaskSpec{Name: "web", Image: "nginx:1.27", Command: []string{"a", "b c"}, Env: map[string]string{"K": "it's; DROP TABLE tasks"},
		Resources: queue.Resources{CPUMillis: 250, MemoryBytes: 64 << 20}, RestartPolicy: queue.RestartOnFailure, MaxRestarts: 3,
		Ports: []queue.Port{{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}}}
	created, err := s.CreateTask(ctx, uuid.Nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTask(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != queue.Pending || got.DesiredState != queue.DesiredRunning || got.Name != "web" || got.Env["K"] != spec.Env["K"] ||
		got.Command[1] != "b c" || got.Resources != spec.Resources || got.Ports[0].HostPort != 8080 || got.MaxRestarts != 3 {
		t.Errorf("stored %+v", got)
	}
	evs, err := s.Events(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].To != queue.Pending || evs[0].Reason != "created" {
		t.Errorf("events = %+v, want one 'created'", evs)
	}
	if _, err := s.CreateTask(ctx, created.ID, spec); !errors.Is(err, queue.ErrConflict) {
		t.Errorf("reusing an id: %v, want ErrConflict", err)
	}
	if _, err := s.GetTask(ctx, uuid.New()); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
}

func TestStore_CreateTask_StoresStrategyAndConstraints(t *testing.T) {
	s, _ := newStore(t)
	tk := createSpec(t, s, queue.TaskSpec{Strategy: "epvm", Constraints: []queue.Constraint{
		{Key: "zone", Op: "=", Value: "eu"}, {Key: "gpu", Op: "!=", Value: "none"}}})
	got := getTask(t, s, tk.ID)
	if got.Strategy != "epvm" || len(got.Constraints) != 2 || got.Constraints[1].String() != "gpu!=none" {
		t.Fatalf("stored strategy %q constraints %+v", got.Strategy, got.Constraints)
	}
	plain := getTask(t, s, createSpec(t, s, queue.TaskSpec{}).ID)
	if plain.Strategy != "" || len(plain.Constraints) != 0 {
		t.Fatalf("defaults: strategy %q constraints %+v", plain.Strategy, plain.Constraints)
	}
}

func TestStore_RequestStop_PendingStopsAtOnce_RunningWaitsForAgent(t *testing.T) {
	s, ctx := newStore(t)
	pendingTask := mustTask(t, s, queue.Resources{})
	got, err := s.RequestStop(ctx, pendingTask.ID, "test")
	if err != nil || got.State != queue.Stopped || got.DesiredState != queue.DesiredStopped {
		t.Fatalf("stop pending: %+v, %v", got, err)
	}

	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30})
	running := mustTask(t, s, queue.Resources{CPUMillis: 100})
	pass(t, s, firstFit)
	claim, _ := s.Claim(ctx, node.ID, 1)
	_ = s.MarkRunning(ctx, claim.Tasks[0].Lease(), "c")
	got, err = s.RequestStop(ctx, running.ID, "test")
	if err != nil || got.State != queue.Running || got.DesiredState != queue.DesiredStopped {
		t.Fatalf("stop running: %+v, %v", got, err)
	}
	reqs, _ := s.StopRequests(ctx, node.ID)
	if len(reqs) != 1 || reqs[0].ID != running.ID {
		t.Fatalf("stop requests = %+v", reqs)
	}
}

// A create sent again with its id (its answer was lost) gets the task it
// made, running or not, and no second one; another spec under that id is a
// conflict.
func TestStore_SubmitTask_SameIDAndSpecReturnsTheStoredTask(t *testing.T) {
	s, ctx := newStore(t)
	spec := queue.TaskSpec{Image: "nginx:1.27", Command: []string{"-serve", ":80"}, Env: map[string]string{"A": "1"},
		Resources: queue.Resources{CPUMillis: 250, MemoryBytes: 64 << 20}, RestartPolicy: queue.RestartOnFailure,
		Ports:       []queue.Port{{ContainerPort: 80}},
		HealthCheck: &queue.HealthCheck{Type: queue.HealthHTTP, Port: 80}, StopAfterDisconnect: queue.Duration(3 * time.Second)}
	spec.Normalize()
	id := uuid.Must(uuid.NewV7())
	first, created, err := s.SubmitTask(ctx, id, spec, CreateOpts{})
	if err != nil || !created {
		t.Fatalf("first submit: created %v, %v", created, err)
	}
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30})
	runOn(t, s, id, node.ID)
	again, created, err := s.SubmitTask(ctx, id, spec, CreateOpts{})
	if err != nil || created {
		t.Fatalf("same id and spec again: created %v, %v", created, err)
	}
	if again.ID != id || again.Name != first.Name || again.State != queue.Running {
		t.Errorf("second submit answered %+v, want the stored, running task %s", again, id)
	}
	other := spec
	other.Resources.CPUMillis = 500
	if _, _, err := s.SubmitTask(ctx, id, other, CreateOpts{}); !errors.Is(err, queue.ErrConflict) {
		t.Errorf("same id, other spec: %v, want ErrConflict", err)
	}
	named := spec
	named.Name = "web"
	if _, _, err := s.SubmitTask(ctx, id, named, CreateOpts{}); !errors.Is(err, queue.ErrConflict) {
		t.Errorf("same id, another name: %v, want ErrConflict", err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM tasks`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d tasks (%v), want 1", n, err)
	}
}
