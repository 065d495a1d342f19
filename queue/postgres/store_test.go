package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func mustNode(t *testing.T, s *Store, name string, cap queue.Resources) queue.Node {
	t.Helper()
	n, err := s.RegisterNode(context.Background(), queue.NodeRegistration{Name: name, Capacity: cap})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustTask(t *testing.T, s *Store, r queue.Resources) queue.Task {
	t.Helper()
	tk, err := s.CreateTask(context.Background(), uuid.Nil, queue.TaskSpec{Image: "alpine", Resources: r, RestartPolicy: queue.RestartNever})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// firstFit is the simplest plan: every task on the first node in the snapshot.
func firstFit(tasks []queue.Task, snap queue.Snapshot) queue.Plan {
	nodes := snap.Nodes
	p := queue.Plan{Unplaced: map[uuid.UUID]string{}}
	for _, t := range tasks {
		if len(nodes) == 0 {
			p.Unplaced[t.ID] = "no nodes"
			continue
		}
		p.Placements = append(p.Placements, queue.Placement{TaskID: t.ID, NodeID: nodes[0].ID})
	}
	return p
}

func pass(t *testing.T, s *Store, plan PlanFunc) PassResult {
	t.Helper()
	res, err := s.SchedulePass(context.Background(), PassOpts{Batch: 100, By: "test"}, plan)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func reserved(t *testing.T, s *Store, id uuid.UUID) queue.Resources {
	t.Helper()
	n, err := s.GetNode(context.Background(), id.String())
	if err != nil {
		t.Fatal(err)
	}
	return n.Reserved
}

func TestStore_CreateTask_StoresSpecAndCreatedEvent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
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

func TestStore_Lifecycle_OneEventPerChange_AndReservationsReleased(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
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
	to, err := s.MarkExited(ctx, lease, 3, "", false)
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

func TestStore_Transition_RefusesInvalidAndWritesNothing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	task := mustTask(t, s, queue.Resources{})
	_, err := transition(ctx, s.pool, stateChange{TaskID: task.ID, To: queue.Running})
	if !errors.Is(err, queue.ErrInvalidTransition) {
		t.Fatalf("pending → running: %v, want ErrInvalidTransition", err)
	}
	got, _ := s.GetTask(ctx, task.ID)
	evs, _ := s.Events(ctx, task.ID)
	if got.State != queue.Pending || len(evs) != 1 {
		t.Errorf("refused change left state %s and %d events", got.State, len(evs))
	}
	if _, err := transition(ctx, s.pool, stateChange{TaskID: uuid.New(), To: queue.Stopped}); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("unknown task: %v, want ErrNotFound", err)
	}
}

func TestStore_FencedWrite_StaleLeaseChangesNothing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
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
	if _, err := s.MarkExited(ctx, other, 0, "", false); !errors.Is(err, queue.ErrNotOwner) {
		t.Fatalf("other node: %v, want ErrNotOwner", err)
	}
	got, _ := s.GetTask(ctx, task.ID)
	if got.State != queue.Starting || got.ContainerID != "" {
		t.Errorf("stale writes changed the task: %+v", got)
	}
}

func TestStore_Claim_ConcurrentClaimersNeverShareATask(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 1_000_000, MemoryBytes: 1 << 40, DiskBytes: 1 << 40})
	const n = 200
	for i := 0; i < n; i++ {
		mustTask(t, s, queue.Resources{CPUMillis: 1})
	}
	for pass(t, s, firstFit).Considered > 0 {
	}
	var mu sync.Mutex
	seen := map[uuid.UUID]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				claim, err := s.Claim(ctx, node.ID, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(claim.Tasks) == 0 {
					return
				}
				mu.Lock()
				for _, tk := range claim.Tasks {
					seen[tk.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d distinct tasks, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("task %s claimed %d times", id, c)
		}
	}
}

func TestStore_SchedulePass_GuardRefusesOverfullNode(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	node := mustNode(t, s, "small", queue.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30})
	for i := 0; i < 3; i++ {
		mustTask(t, s, queue.Resources{CPUMillis: 400})
	}
	// A careless plan that puts all three (1.2 cores) on a 1-core node gets
	// the two that fit, in plan order; the third stays pending with a reason
	// and nothing is oversubscribed.
	res := pass(t, s, firstFit)
	if res.Placed != 2 || res.Rejected != 1 {
		t.Fatalf("pass = %+v, want 2 placed and 1 rejected", res)
	}
	if r := reserved(t, s, node.ID); r.CPUMillis != 800 {
		t.Fatalf("reserved %d millicores, want 800", r.CPUMillis)
	}
	pending, _ := s.ListTasks(ctx, TaskFilter{States: []queue.State{queue.Pending}})
	if len(pending) != 1 || pending[0].Reason != retryReason {
		t.Fatalf("pending = %+v, want one with the retry reason", pending)
	}
}

func TestStore_RequestStop_PendingStopsAtOnce_RunningWaitsForAgent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
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

func TestStore_Listen_WakesOnNewTask(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woke := make(chan string, 16)
	go s.Listen(ctx, []string{ChannelPending}, func(ch string) { woke <- ch })
	if ch := <-woke; ch != "" {
		t.Fatalf("first wake = %q, want the on-connect wake", ch)
	}
	mustTask(t, s, queue.Resources{})
	select {
	case ch := <-woke:
		if ch != ChannelPending {
			t.Fatalf("woke on %q", ch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification for a new task")
	}
}
