package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/scheduler"
)

func TestStore_SchedulePass_HostPortHeldUntilTheTaskEnds(t *testing.T) {
	s, ctx := newStore(t)
	node := mustNode(t, s, "n1", roomy)
	web := queue.TaskSpec{Ports: []queue.Port{{ContainerPort: 80, HostPort: 8080}}, Resources: queue.Resources{CPUMillis: 100}}
	first := createSpec(t, s, web)
	second := createSpec(t, s, web)
	udp := createSpec(t, s, queue.TaskSpec{Ports: []queue.Port{{ContainerPort: 53, HostPort: 8080, Protocol: "udp"}}})

	if res := schedPass(t, s, "binpack"); res.Placed != 2 || res.Unplaced != 1 {
		t.Fatalf("pass = %+v, want 2 placed (tcp and udp 8080) and 1 waiting", res)
	}
	if got := getTask(t, s, udp.ID); got.State != queue.Scheduled {
		t.Fatalf("udp/8080 task is %s, want scheduled", got.State)
	}
	waiting := getTask(t, s, second.ID)
	if waiting.State != queue.Pending || waiting.Reason != "no node fits: 1 with host port 8080/tcp taken" {
		t.Fatalf("second tcp/8080 task: %s, reason %q", waiting.State, waiting.Reason)
	}
	var held int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM node_ports WHERE node_id = $1`, node.ID).Scan(&held); err != nil || held != 2 {
		t.Fatalf("node_ports rows = %d (%v), want 2", held, err)
	}

	// The first one ends: its port is released in the same statement, and
	// the second is placed by the next pass.
	claim, err := s.Claim(ctx, node.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claim.Tasks {
		if c.ID == first.ID {
			if err := s.MarkRunning(ctx, c.Lease(), "c1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RecordExit(ctx, c.Lease(), ExitReport{Code: 0}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if res := schedPass(t, s, "binpack"); res.Placed != 1 {
		t.Fatalf("pass after the port was freed = %+v, want 1 placed", res)
	}
	if got := getTask(t, s, second.ID); got.State != queue.Scheduled || got.Reason != "" {
		t.Fatalf("second task: %s, reason %q", got.State, got.Reason)
	}
	// Stopping a scheduled task releases its port too.
	if _, err := s.RequestStop(ctx, second.ID, "test"); err != nil {
		t.Fatal(err)
	}
	var ports []int
	rows, _ := s.pool.Query(ctx, `SELECT host_port FROM node_ports np JOIN tasks t ON t.id = np.task_id WHERE t.id = $1`, second.ID)
	for rows.Next() {
		var p int
		_ = rows.Scan(&p)
		ports = append(ports, p)
	}
	if rows.Err() != nil || len(ports) != 0 {
		t.Fatalf("a stopped task still holds ports %v (%v)", ports, rows.Err())
	}
}

// blind plans every task on the first node, ignoring host ports, cordons and
// capacity, as a replica with a stale snapshot would.
func blind(tasks []queue.Task, snap queue.Snapshot) queue.Plan {
	p := queue.Plan{Unplaced: map[uuid.UUID]string{}}
	for _, t := range tasks {
		p.Placements = append(p.Placements, queue.Placement{TaskID: t.ID, NodeID: snap.Nodes[0].ID})
	}
	return p
}

func TestStore_SchedulePass_CommitRefusesAHostPortTwice(t *testing.T) {
	s, _ := newStore(t)
	mustNode(t, s, "n1", roomy)
	spec := queue.TaskSpec{Ports: []queue.Port{{ContainerPort: 80, HostPort: 9000}}}
	a, b := createSpec(t, s, spec), createSpec(t, s, spec)
	res := pass(t, s, blind)
	if res.Placed != 1 || res.Rejected != 1 {
		t.Fatalf("pass = %+v, want the second use of 9000/tcp refused", res)
	}
	// Now one holds the port in node_ports; a third, planned blind again, is
	// refused against the committed row.
	c := createSpec(t, s, spec)
	res = pass(t, s, blind)
	if res.Placed != 0 || res.Rejected != 2 {
		t.Fatalf("second pass = %+v, want both refused", res)
	}
	placed := 0
	for _, id := range []uuid.UUID{a.ID, b.ID, c.ID} {
		if tk := getTask(t, s, id); tk.State == queue.Scheduled {
			placed++
		} else if tk.Reason != retryReason {
			t.Errorf("refused task's reason = %q", tk.Reason)
		}
	}
	if placed != 1 {
		t.Fatalf("%d tasks hold 9000/tcp, want 1", placed)
	}
}

func TestStore_SchedulePass_RoundRobinContinuesAcrossPassesAndReplicas(t *testing.T) {
	t.Parallel()
	url := newURL(t)
	s1, s2 := openStore(t, url), openStore(t, url)
	for i := 0; i < 3; i++ {
		mustNode(t, s1, string(rune('a'+i)), roomy)
	}
	nodes, _ := s1.ListNodes(context.Background())
	byID := map[uuid.UUID]string{}
	for _, n := range nodes {
		byID[n.ID] = n.Name
	}
	// Two tasks per pass, passes alternating between two stores: the walk
	// continues where the other replica stopped.
	var order []string
	for i := 0; i < 4; i++ {
		s := []*Store{s1, s2}[i%2]
		ids := []uuid.UUID{createSpec(t, s, queue.TaskSpec{}).ID, createSpec(t, s, queue.TaskSpec{}).ID}
		if res := schedPass(t, s, "round-robin"); res.Placed != 2 {
			t.Fatalf("pass %d = %+v", i, res)
		}
		for _, id := range ids {
			order = append(order, byID[*getTask(t, s, id).NodeID])
		}
	}
	if got := strings.Join(order, ""); got != "abcabcab" {
		t.Fatalf("round-robin order %q, want abcabcab", got)
	}
	// A task may ask for round-robin under a binpack coordinator and still
	// continue the shared walk.
	tk := createSpec(t, s1, queue.TaskSpec{Strategy: "round-robin"})
	schedPass(t, s1, "binpack")
	if got := byID[*getTask(t, s1, tk.ID).NodeID]; got != "c" {
		t.Fatalf("round-robin task under binpack went to %s, want c", got)
	}
}

func TestStore_SchedulePass_UnplaceableTasksDoNotBlockTheQueue(t *testing.T) {
	s, _ := newStore(t)
	mustNode(t, s, "n1", roomy)
	ctx := context.Background()
	sc, _ := scheduler.New("binpack")
	// A full batch of tasks that fit nowhere, then one that fits.
	var big queue.Task
	for i := 0; i < 5; i++ {
		big = createSpec(t, s, queue.TaskSpec{Resources: queue.Resources{MemoryBytes: 64 << 30}})
	}
	small := createSpec(t, s, queue.TaskSpec{Resources: queue.Resources{CPUMillis: 100}})
	res, err := s.SchedulePass(ctx, PassOpts{Batch: 5, By: "test"}, sc.Plan)
	if err != nil || res.Unplaced != 5 || res.Placed != 0 {
		t.Fatalf("first pass = %+v, %v; want the 5 big ones considered and waiting", res, err)
	}
	if got := getTask(t, s, big.ID); got.Reason != "no node fits: 1 short of memory (needs 64GiB)" {
		t.Fatalf("reason %q", got.Reason)
	}
	res, err = s.SchedulePass(ctx, PassOpts{Batch: 5, By: "test"}, sc.Plan)
	if err != nil || res.Placed != 1 {
		t.Fatalf("second pass = %+v, %v; want the small task placed", res, err)
	}
	if got := getTask(t, s, small.ID); got.State != queue.Scheduled {
		t.Fatalf("small task is %s", got.State)
	}
}

func TestStore_SchedulePass_CordonedNodeGetsNothingUntilUncordoned(t *testing.T) {
	s, ctx := newStore(t)
	a := mustNode(t, s, "a", roomy)
	b := mustNode(t, s, "b", roomy)
	if _, err := s.SetCordoned(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		createSpec(t, s, queue.TaskSpec{Resources: queue.Resources{CPUMillis: 100}})
	}
	schedPass(t, s, "spread")
	if r := reserved(t, s, a.ID); r.CPUMillis != 0 {
		t.Fatalf("cordoned node got %dm reserved", r.CPUMillis)
	}
	if r := reserved(t, s, b.ID); r.CPUMillis != 500 {
		t.Fatalf("other node has %dm reserved, want 500m", r.CPUMillis)
	}
	if _, err := s.SetCordoned(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	tk := createSpec(t, s, queue.TaskSpec{})
	schedPass(t, s, "spread")
	if got := getTask(t, s, tk.ID); got.State != queue.Pending || got.Reason != "no node fits: 2 cordoned" {
		t.Fatalf("with every node cordoned: %s, reason %q", got.State, got.Reason)
	}
	if _, err := s.SetCordoned(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	schedPass(t, s, "spread")
	if got := getTask(t, s, tk.ID); got.State != queue.Scheduled || *got.NodeID != a.ID {
		t.Fatalf("after uncordon: %s on %v, want scheduled on a", got.State, got.NodeID)
	}
}

// A replica that read a node before it was cordoned still cannot place on it.
func TestStore_SchedulePass_CommitRefusesACordonedNode(t *testing.T) {
	s, _ := newStore(t)
	n := mustNode(t, s, "a", roomy)
	if _, err := s.SetCordoned(context.Background(), "a", true); err != nil {
		t.Fatal(err)
	}
	createSpec(t, s, queue.TaskSpec{})
	if res := pass(t, s, blind); res.Placed != 0 || res.Rejected != 1 {
		t.Fatalf("pass = %+v, want the placement on a cordoned node refused", res)
	}
	if r := reserved(t, s, n.ID); r != (queue.Resources{}) {
		t.Fatalf("reserved %+v on a cordoned node", r)
	}
}

func TestStore_ReportUsage_FeedsEPVM(t *testing.T) {
	s, ctx := newStore(t)
	busy := mustNode(t, s, "busy", roomy)
	idle := mustNode(t, s, "idle", roomy)
	if err := s.ReportUsage(ctx, busy.ID, queue.Usage{CPUPercent: 95, Load1: 3.9, MemoryUsedBytes: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReportUsage(ctx, idle.ID, queue.Usage{CPUPercent: 3, Load1: 0.1, MemoryUsedBytes: 2 << 30}); err != nil {
		t.Fatal(err)
	}
	n, _ := s.GetNode(ctx, "busy")
	if n.Usage.CPUPercent != 95 || n.Usage.Load1 < 3.89 || n.Usage.At == nil || time.Since(*n.Usage.At) > time.Minute {
		t.Fatalf("stored usage %+v", n.Usage)
	}
	tk := createSpec(t, s, queue.TaskSpec{Resources: queue.Resources{CPUMillis: 2000, MemoryBytes: 1 << 30}})
	schedPass(t, s, "epvm")
	if got := getTask(t, s, tk.ID); got.NodeID == nil || *got.NodeID != idle.ID {
		t.Fatalf("epvm placed on %v, want the idle node %s", got.NodeID, idle.ID)
	}
	if err := s.ReportUsage(ctx, uuid.New(), queue.Usage{}); err == nil {
		t.Fatal("usage for an unknown node was accepted")
	}
}

func TestStore_SchedulePass_ConstraintsAgainstNodeLabels(t *testing.T) {
	s, ctx := newStore(t)
	for name, zone := range map[string]string{"eu1": "eu", "us1": "us"} {
		if _, err := s.RegisterNode(ctx, queue.NodeRegistration{Name: name, Capacity: roomy, Labels: map[string]string{"zone": zone}}); err != nil {
			t.Fatal(err)
		}
	}
	eu := createSpec(t, s, queue.TaskSpec{Constraints: []queue.Constraint{{Key: "zone", Op: "=", Value: "eu"}}})
	notEU := createSpec(t, s, queue.TaskSpec{Constraints: []queue.Constraint{{Key: "zone", Op: "!=", Value: "eu"}}})
	mars := createSpec(t, s, queue.TaskSpec{Constraints: []queue.Constraint{{Key: "zone", Op: "=", Value: "mars"}}})
	schedPass(t, s, "binpack")
	for id, want := range map[uuid.UUID]string{eu.ID: "eu1", notEU.ID: "us1", mars.ID: ""} {
		got := getTask(t, s, id)
		if got.NodeName != want {
			t.Errorf("task with %v on %q, want %q (reason %q)", got.Constraints, got.NodeName, want, got.Reason)
		}
	}
	if got := getTask(t, s, mars.ID).Reason; got != "no node fits: 2 not matching zone=mars" {
		t.Errorf("reason %q", got)
	}
}

func TestStore_SchedulePass_WakesTheChosenNodesAgent(t *testing.T) {
	s, _ := newStore(t)
	n := mustNode(t, s, "a", roomy)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woke := make(chan Notification, 16)
	go s.Listen(ctx, []string{NodeChannel(n.ID), ChannelWake}, func(n Notification) { woke <- n })
	<-woke // the on-connect wake
	createSpec(t, s, queue.TaskSpec{})
	schedPass(t, s, "binpack")
	// On the node's channel for an agent that LISTENs, and on the wake
	// channel with the node's id for the coordinators to relay.
	heard := map[Notification]bool{}
	for len(heard) < 2 {
		select {
		case got := <-woke:
			heard[got] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("heard %v within 5 s; want the node's channel and the wake channel", heard)
		}
	}
	if !heard[Notification{Channel: NodeChannel(n.ID), Payload: "work"}] || !heard[Notification{Channel: ChannelWake, Payload: n.ID.String()}] {
		t.Fatalf("heard %v", heard)
	}
}

func TestStore_SchedulePass_GuardRefusesOverfullNode(t *testing.T) {
	s, ctx := newStore(t)
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
