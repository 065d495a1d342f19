package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestStore_Beat_MovesLastHeartbeat(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "hb", queue.Resources{CPUMillis: 1000})
	time.Sleep(10 * time.Millisecond)
	if _, err := s.Beat(ctx, n.ID, NodeHealth{}, time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetNode(ctx, n.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastHeartbeat.After(n.LastHeartbeat) {
		t.Fatalf("last heartbeat %v, not after registration's %v", got.LastHeartbeat, n.LastHeartbeat)
	}
}

func TestHeartbeatPolicy_ScalesWithLiveNodes_AndAgentsFollowIt(t *testing.T) {
	s, ctx := newStore(t)
	var nodes []queue.Node
	for i := range 120 {
		nodes = append(nodes, mustNode(t, s, fmt.Sprintf("n%03d", i), roomyNode))
	}

	// 120 nodes at no more than 50 beats a second: every 2.4 s.
	p, changed, err := s.UpdateHeartbeatPolicy(ctx, 50, 0)
	if err != nil || !changed || p.Interval != 2400*time.Millisecond || p.LiveNodes != 120 {
		t.Fatalf("policy = %+v, changed %v, %v; want 2.4s for 120 live nodes, changed", p, changed, err)
	}
	if _, changed, err := s.UpdateHeartbeatPolicy(ctx, 50, 0); err != nil || changed {
		t.Errorf("the same cluster again: changed %v, %v; want no change", changed, err)
	}
	// An agent beating every 2 s is told to slow down; one beating every
	// 5 s keeps its own interval.
	r, err := s.Beat(ctx, nodes[0].ID, NodeHealth{}, 2*time.Second)
	if err != nil || r.Interval != 2400*time.Millisecond {
		t.Errorf("beat every 2s: next in %v, %v; want 2.4s", r.Interval, err)
	}
	if r, err := s.Beat(ctx, nodes[1].ID, NodeHealth{}, 5*time.Second); err != nil || r.Interval != 5*time.Second {
		t.Errorf("beat every 5s: next in %v, %v; want 5s", r.Interval, err)
	}

	// Down nodes do not count.
	exec(t, s, `UPDATE nodes SET state = 'down' WHERE name >= 'n100'`)
	if p, changed, err := s.UpdateHeartbeatPolicy(ctx, 50, 0); err != nil || !changed || p.Interval != 2*time.Second || p.LiveNodes != 100 {
		t.Errorf("with 100 live nodes: %+v, changed %v, %v; want 2s", p, changed, err)
	}
	// A bound on the interval: 100 nodes at 5 a second would beat every
	// 20 s, but no longer than every 3 s is asked.
	if p, changed, err := s.UpdateHeartbeatPolicy(ctx, 5, 3*time.Second); err != nil || !changed || p.Interval != 3*time.Second {
		t.Errorf("at 5/s, at most 3s: %+v, changed %v, %v; want 3s", p, changed, err)
	}
	if p, _, err := s.UpdateHeartbeatPolicy(ctx, 5, time.Minute); err != nil || p.Interval != 20*time.Second {
		t.Errorf("at 5/s, at most a minute: %+v, %v; want 20s", p, err)
	}
	// No limit: every agent keeps its own.
	if p, _, err := s.UpdateHeartbeatPolicy(ctx, 0, 0); err != nil || p.Interval != 0 {
		t.Errorf("no limit: %+v, %v; want interval 0", p, err)
	}
	if r, err := s.Beat(ctx, nodes[0].ID, NodeHealth{}, 2*time.Second); err != nil || r.Interval != 2*time.Second {
		t.Errorf("no limit, beat every 2s: next in %v, %v; want 2s", r.Interval, err)
	}
}

func TestHeartbeatPolicy_ANodeToldToBeatLessOftenMayStaySilentLonger(t *testing.T) {
	s, ctx := newStore(t)
	const timeout = 2 * time.Second
	for serverUptime(t, s) < 4*timeout { // see TestStore_MarkSilentNodesDown_NotRightAfterPostgresStarts
		time.Sleep(time.Second)
	}
	fast := mustNode(t, s, "fast", roomyNode)
	slow := mustNode(t, s, "slow", roomyNode)
	// Both silent for 3 s, longer than the timeout; "slow" was told to beat
	// every 4 s, so it may stay silent for 4 s + half the timeout.
	exec(t, s, `UPDATE nodes SET last_heartbeat = now() - interval '3 seconds',
    heartbeat_interval_ms = CASE name WHEN 'slow' THEN 4000 ELSE 500 END`)
	down, err := s.MarkSilentNodesDown(ctx, timeout)
	if err != nil || len(down) != 1 || down[0].ID != fast.ID {
		t.Fatalf("marked down %v, %v; want only the node beating every 0.5 s", names(down), err)
	}
	// The scheduler still places work on it.
	tk, err := s.CreateTask(ctx, uuid.Nil, normalized(queue.TaskSpec{Image: "img", Resources: queue.Resources{CPUMillis: 100}}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.SchedulePass(ctx, PassOpts{Batch: 10, By: "test", NodeTimeout: timeout}, onNode(slow.ID))
	if err != nil || res.Placed != 1 {
		t.Fatalf("placing task %s on the slow node: %+v, %v; want it placed", tk.ID, res, err)
	}
	exec(t, s, `UPDATE nodes SET last_heartbeat = now() - interval '5.5 seconds' WHERE name = 'slow'`)
	if down, err := s.MarkSilentNodesDown(ctx, timeout); err != nil || len(down) != 1 || down[0].ID != slow.ID {
		t.Fatalf("after 5.5 s of silence marked down %v, %v; want the slow node", names(down), err)
	}
}

func names(nodes []queue.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

func normalized(spec queue.TaskSpec) queue.TaskSpec {
	spec.Normalize()
	return spec
}

// The beat tells the agent what the database holds for its node: tasks to
// claim, stop requests, the leases it must hold (by digest) and volumes to
// delete, so that an idle agent can skip asking.
func TestStore_Beat_NodeDigest(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	other := mustNode(t, s, "n2", roomyNode)
	beat := func() NodeDigest {
		t.Helper()
		r, err := s.Beat(ctx, n.ID, NodeHealth{}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return r.Node
	}
	if d := beat(); d != (NodeDigest{LeasesRead: true}) {
		t.Fatalf("an empty node's digest = %+v, want zero", d)
	}

	a := running(t, s, n.ID, queue.TaskSpec{})
	b := running(t, s, n.ID, queue.TaskSpec{})
	running(t, s, other.ID, queue.TaskSpec{}) // another node's lease counts for that node only
	want := LeaseDigest(a) ^ LeaseDigest(b)
	if d := beat(); d.Leases != 2 || d.LeaseDigest != want || d.Scheduled || d.Stops != 0 {
		t.Fatalf("digest = %+v, want 2 leases with digest %d and nothing else", d, want)
	}

	// A task placed but not claimed yet: the wake-up the agent may have missed.
	waiting := mustTask(t, s, queue.Resources{CPUMillis: 10})
	if res := pass(t, s, placeOnly(waiting.ID, n.ID)); res.Placed != 1 {
		t.Fatalf("placing: %+v", res)
	}
	if d := beat(); !d.Scheduled || d.Leases != 2 {
		t.Fatalf("digest with a placed task = %+v, want tasks waiting", d)
	}

	if _, err := s.RequestStop(ctx, a.TaskID, "test"); err != nil {
		t.Fatal(err)
	}
	if d := beat(); d.Stops != 1 {
		t.Fatalf("digest with a stop request = %+v, want 1 stop", d)
	}

	// A lease given up (the task failed) leaves the digest of the others.
	if _, err := s.one(ctx, AgentWrite{Lease: b, Exit: &ExitReport{Code: 1}}); err != nil {
		t.Fatal(err)
	}
	if d := beat(); d.Leases != 1 || d.LeaseDigest != LeaseDigest(a) {
		t.Fatalf("digest after an exit = %+v, want the one lease left (%d)", d, LeaseDigest(a))
	}

	if err := s.ReportVolumes(ctx, n.ID, []string{"data"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestVolumeDelete(ctx, "data"); err != nil {
		t.Fatal(err)
	}
	if d := beat(); d.VolumeDeletes != 1 {
		t.Fatalf("digest with a volume to delete = %+v, want 1", d)
	}

	// A busy agent's beat leaves the leases out, not what waits for it.
	r, err := s.Beat(ctx, n.ID, NodeHealth{Busy: true}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := (NodeDigest{Scheduled: true, VolumeDeletes: 1}); r.Node != want {
		t.Fatalf("a busy agent's digest = %+v, want %+v", r.Node, want)
	}
}

// A scheduling pass that places tasks on a node holds the node's row FOR
// KEY SHARE until it commits (the foreign-key check of tasks.node_id): the
// node's heartbeat must not wait for it.
func TestStore_Beat_DoesNotWaitForAPassPlacingOnTheNode(t *testing.T) {
	s, ctx := newStore(t)
	n := mustNode(t, s, "n1", roomyNode)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	task := mustTask(t, s, queue.Resources{CPUMillis: 10})
	if _, err := tx.Exec(ctx, `UPDATE tasks SET state = 'scheduled', node_id = $2, attempt = 1 WHERE id = $1`, task.ID, n.ID); err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.Beat(bctx, n.ID, NodeHealth{}, time.Second); err != nil {
		t.Fatalf("a beat while a placement on the node is uncommitted: %v", err)
	}
}
