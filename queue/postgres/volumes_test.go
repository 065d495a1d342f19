package postgres

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestSchedulePass_VolumeStaysOnTheNodeOfItsFirstTask(t *testing.T) {
	s, ctx := newStore(t)
	cap := queue.Resources{CPUMillis: 4000, MemoryBytes: 4 << 30, DiskBytes: 4 << 30}
	a, b := mustNode(t, s, "vol-a", cap), mustNode(t, s, "vol-b", cap)
	vol := []queue.Mount{{Source: "data", Target: "/data"}}

	first := createSpec(t, s, queue.TaskSpec{Volumes: vol})
	pass(t, s, onNode(a.ID))
	if got := getTask(t, s, first.ID); got.NodeID == nil || *got.NodeID != a.ID || len(got.Volumes) != 1 {
		t.Fatalf("first task: %+v, want placed on a with its volume", got)
	}
	vs, err := s.ListVolumes(ctx)
	if err != nil || len(vs) != 1 || vs[0].Name != "data" || vs[0].NodeID != a.ID || vs[0].Tasks != 1 {
		t.Fatalf("ListVolumes: %+v, %v; want data on a, mounted once", vs, err)
	}

	// A plan made on a stale view, putting the volume's next task on b, is
	// not committed.
	second := createSpec(t, s, queue.TaskSpec{Volumes: vol})
	res := pass(t, s, onNode(b.ID))
	if res.Placed != 0 || getTask(t, s, second.ID).State != queue.Pending {
		t.Fatalf("second task planned onto b: %+v, want refused", res)
	}
	pass(t, s, onNode(a.ID))
	if got := getTask(t, s, second.ID); got.NodeID == nil || *got.NodeID != a.ID {
		t.Fatalf("second task: %+v, want placed on a", got)
	}

	// Deleting: refused while a placed task mounts it, then carried out by
	// the node's agent.
	if _, err := s.RequestVolumeDelete(ctx, "data"); !errors.Is(err, queue.ErrConflict) {
		t.Fatalf("delete while mounted: %v, want a conflict", err)
	}
	for _, id := range []uuid.UUID{first.ID, second.ID} {
		if _, err := s.RequestStop(ctx, id, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RequestVolumeDelete(ctx, "missing"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("delete of an unknown volume: %v, want not found", err)
	}
	if _, err := s.RequestVolumeDelete(ctx, "data"); err != nil {
		t.Fatal(err)
	}
	third := createSpec(t, s, queue.TaskSpec{Volumes: vol})
	if res := pass(t, s, onNode(a.ID)); res.Placed != 0 {
		t.Errorf("a task of a volume being deleted was placed: %+v", res)
	}
	if names, err := s.VolumeDeletes(ctx, b.ID); err != nil || len(names) != 0 {
		t.Errorf("node b's deletions: %v, %v; want none", names, err)
	}
	names, err := s.VolumeDeletes(ctx, a.ID)
	if err != nil || len(names) != 1 || names[0] != "data" {
		t.Fatalf("node a's deletions: %v, %v; want data", names, err)
	}
	// Not removed yet: it stays to be deleted, with why.
	if err := s.VolumeRemoved(ctx, a.ID, "data", errors.New("volume is in use")); err != nil {
		t.Fatal(err)
	}
	if vs, _ := s.ListVolumes(ctx); len(vs) != 1 || vs[0].DeleteRequestedAt == nil || vs[0].Error != "volume is in use" {
		t.Errorf("after a failed removal: %+v, want it still deleting, with the error", vs)
	}
	if names, _ := s.VolumeDeletes(ctx, a.ID); len(names) != 1 {
		t.Errorf("after a failed removal, node a's deletions: %v, want data again", names)
	}
	if err := s.VolumeRemoved(ctx, a.ID, "data", nil); err != nil {
		t.Fatal(err)
	}
	if vs, _ := s.ListVolumes(ctx); len(vs) != 0 {
		t.Errorf("after removal: %+v, want no volumes", vs)
	}
	// Gone, the name is new again: the waiting task goes anywhere.
	pass(t, s, onNode(b.ID))
	if got := getTask(t, s, third.ID); got.NodeID == nil || *got.NodeID != b.ID {
		t.Errorf("task of a deleted volume's name: %+v, want placed on b", got)
	}
}
