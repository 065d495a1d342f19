package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// One batch of an agent's writes: each decided and recorded as if it were
// alone, all in one transaction.
func TestStore_WriteBatch_EachWriteAsAlone_OneCommit(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	quick := claimedOn(t, s, n.ID, queue.TaskSpec{})                                      // starts and ends within the batch
	crash := claimedOn(t, s, n.ID, queue.TaskSpec{RestartPolicy: queue.RestartOnFailure}) // restarts
	back := claimedOn(t, s, n.ID, queue.TaskSpec{})                                       // handed back
	stale := claimedOn(t, s, n.ID, queue.TaskSpec{})                                      // a lease moved on
	running := runningOn(t, s, n.ID, queue.TaskSpec{})                                    // a repeated running write
	staleLease := stale
	staleLease.Attempt++
	c1, c2, c3 := "c1", "c2", "c-"+running.TaskID.String()[:8]
	writes := []AgentWrite{
		{Lease: quick, Running: &c1},
		{Lease: crash, Running: &c2},
		{Lease: quick, Exit: &ExitReport{Code: 0}},
		{Lease: crash, Exit: &ExitReport{Code: 3}},
		{Lease: back, Requeue: "lost: engine down"},
		{Lease: staleLease, Running: &c1},
		{Lease: running, Running: &c3},
	}
	res, err := s.WriteBatch(ctx, writes)
	if err != nil {
		t.Fatal(err)
	}
	// Rows written by one transaction carry its id (xmin).
	var xids int
	if err := s.pool.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM tasks WHERE id = ANY($1)`,
		[]uuid.UUID{quick.TaskID, crash.TaskID, back.TaskID}).Scan(&xids); err != nil {
		t.Fatal(err)
	}
	if xids != 1 {
		t.Errorf("the batch's tasks were written by %d transactions, want 1", xids)
	}
	want := []queue.State{queue.Running, queue.Running, queue.Completed, queue.Pending, queue.Pending, "", queue.Running}
	for i, r := range res {
		if r.State != want[i] {
			t.Errorf("write %d: %s (%v), want %s", i, r.State, r.Err, want[i])
		}
	}
	if !errors.Is(res[5].Err, queue.ErrNotOwner) {
		t.Errorf("the stale lease's write: %v, want not owner", res[5].Err)
	}
	if tk := getTask(t, s, quick.TaskID); tk.State != queue.Completed || tk.ExitCode == nil || *tk.ExitCode != 0 {
		t.Errorf("the quick task is %s", tk.State)
	}
	evs, _ := s.Events(ctx, quick.TaskID)
	if len(evs) < 2 || evs[len(evs)-2].To != queue.Running || evs[len(evs)-1].To != queue.Completed {
		t.Errorf("the quick task's last events: %+v", evs)
	}
	if tk := getTask(t, s, crash.TaskID); tk.State != queue.Pending || tk.Restarts != 1 {
		t.Errorf("the crashed task: %s after %d restarts", tk.State, tk.Restarts)
	}
	if tk := getTask(t, s, stale.TaskID); tk.State != queue.Starting {
		t.Errorf("the stale lease's task is %s, want starting (untouched)", tk.State)
	}
	if r := reserved(t, s, n.ID); r.CPUMillis != 2*100 {
		t.Errorf("node reserves %dm, want 200m (the stale and the running task)", r.CPUMillis)
	}
}

// claimedOn creates a task of 100m and takes it to starting on node.
func claimedOn(t *testing.T, s *Store, node uuid.UUID, spec queue.TaskSpec) queue.Lease {
	t.Helper()
	ctx := context.Background()
	if spec.Image == "" {
		spec.Image = "alpine"
	}
	spec.Resources.CPUMillis = 100
	spec.Normalize()
	tk, err := s.CreateTask(ctx, uuid.Nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	if res := pass(t, s, placeOnly(tk.ID, node)); res.Placed != 1 {
		t.Fatalf("placing: %+v", res)
	}
	claim, err := s.Claim(ctx, node, 100)
	if err != nil || len(claim.Tasks) != 1 {
		t.Fatalf("claim: %+v, %v", claim.Tasks, err)
	}
	return claim.Tasks[0].Lease()
}

// runningOn is claimedOn, then running.
func runningOn(t *testing.T, s *Store, node uuid.UUID, spec queue.TaskSpec) queue.Lease {
	t.Helper()
	l := claimedOn(t, s, node, spec)
	if err := s.MarkRunning(context.Background(), l, "c-"+l.TaskID.String()[:8]); err != nil {
		t.Fatal(err)
	}
	return l
}
