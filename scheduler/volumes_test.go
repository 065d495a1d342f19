package scheduler

import (
	"strings"
	"testing"

	"github.com/orchd/orch/queue"
)

func mounts(m ...string) func(*queue.Task) {
	return func(t *queue.Task) {
		for _, s := range m {
			mt, err := queue.ParseMount(s)
			if err != nil {
				panic(err)
			}
			t.Volumes = append(t.Volumes, mt)
		}
	}
}

func TestPlan_VolumesPlaceTasksWhereTheyLive(t *testing.T) {
	t.Parallel()
	a, b, c := node("a", 4*core, 8*gib), node("b", 4*core, 8*gib), node("c", 4*core, 8*gib)
	snap := queue.Snapshot{Nodes: []queue.Node{a, b, c}, Volumes: map[string]queue.VolumeHome{
		"db":   {NodeID: b.ID},
		"gone": {NodeID: c.ID, Deleting: true},
		"far":  {NodeID: a.ID},
	}}
	s, err := New(queue.StrategySpread)
	if err != nil {
		t.Fatal(err)
	}
	tasks := []queue.Task{
		task("uses-db", core, gib, mounts("db:/data")),
		task("uses-db-ro", core, gib, mounts("db:/data:ro")),
		task("new-1", core, gib, mounts("fresh:/data")),
		task("new-2", core, gib, mounts("fresh:/data")),
		task("deleting", core, gib, mounts("gone:/data")),
		task("split", core, gib, mounts("db:/a", "far:/b")),
		task("too-big", 8*core, gib, mounts("db:/data")),
		task("host", core, gib, mounts("/srv/orch/x:/data")),
	}
	p := s.Plan(tasks, snap)
	where := map[string]string{}
	names := map[string]string{a.ID.String(): "a", b.ID.String(): "b", c.ID.String(): "c"}
	for _, pl := range p.Placements {
		for _, tk := range tasks {
			if tk.ID == pl.TaskID {
				where[tk.Name] = names[pl.NodeID.String()]
			}
		}
	}
	if where["uses-db"] != "b" || where["uses-db-ro"] != "b" {
		t.Errorf("tasks of volume db went to %q and %q, want b (where it lives)", where["uses-db"], where["uses-db-ro"])
	}
	if where["new-1"] == "" || where["new-1"] != where["new-2"] {
		t.Errorf("two tasks of one new volume went to %q and %q, want one node", where["new-1"], where["new-2"])
	}
	why := map[string]string{}
	for _, tk := range tasks {
		if r, ok := p.Unplaced[tk.ID]; ok {
			why[tk.Name] = r
		}
	}
	for name, want := range map[string]string{
		"deleting": "volume gone is being deleted",
		"split":    "live on different nodes",
		"too-big":  "volume db lives on node b: no node fits: 1 short of CPU",
		"host":     "3 not allowing host mounts",
	} {
		if !strings.Contains(why[name], want) {
			t.Errorf("%s: unplaced because %q, want it to say %q", name, why[name], want)
		}
	}
}
