package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

const (
	gib  = int64(1) << 30
	core = int64(1000)
)

// node builds a ready node with a stable id derived from its name, so that
// id order (the round-robin order) is name order in these tests.
func node(name string, cpu, mem int64, opts ...func(*queue.Node)) queue.Node {
	var id uuid.UUID
	copy(id[:], fmt.Sprintf("%-16s", name))
	n := queue.Node{ID: id, Name: name, State: queue.NodeReady,
		Capacity: queue.Resources{CPUMillis: cpu, MemoryBytes: mem, DiskBytes: 100 * gib}}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func reservedRes(cpu, mem int64) func(*queue.Node) {
	return func(n *queue.Node) { n.Reserved = queue.Resources{CPUMillis: cpu, MemoryBytes: mem} }
}

func cordoned(n *queue.Node) { n.Cordoned = true }
func down(n *queue.Node)     { n.State = queue.NodeDown }

func labels(kv ...string) func(*queue.Node) {
	return func(n *queue.Node) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func usage(cpuPercent, load1 float64, memUsed int64) func(*queue.Node) {
	return func(n *queue.Node) {
		at := time.Now()
		n.Usage = queue.Usage{CPUPercent: cpuPercent, Load1: load1, MemoryUsedBytes: memUsed, At: &at}
	}
}

func task(name string, cpu, mem int64, opts ...func(*queue.Task)) queue.Task {
	t := queue.Task{ID: uuid.New(), TaskSpec: queue.TaskSpec{Name: name, Image: "x",
		Resources: queue.Resources{CPUMillis: cpu, MemoryBytes: mem}}}
	for _, o := range opts {
		o(&t)
	}
	return t
}

func withStrategy(s string) func(*queue.Task) { return func(t *queue.Task) { t.Strategy = s } }

func withPort(host int, protocol string) func(*queue.Task) {
	return func(t *queue.Task) {
		t.Ports = append(t.Ports, queue.Port{ContainerPort: 80, HostPort: host, Protocol: protocol})
	}
}

func withConstraint(s string) func(*queue.Task) {
	return func(t *queue.Task) {
		c, err := queue.ParseConstraint(s)
		if err != nil {
			panic(err)
		}
		t.Constraints = append(t.Constraints, c)
	}
}

// placedOn runs a plan and returns, per task name, the node name it went to
// ("" when unplaced), and the reasons of the unplaced ones.
func placedOn(t *testing.T, strategy string, tasks []queue.Task, snap queue.Snapshot) (map[string]string, map[string]string) {
	t.Helper()
	s, err := New(strategy)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Plan(tasks, snap)
	nodeName := map[uuid.UUID]string{}
	for _, n := range snap.Nodes {
		nodeName[n.ID] = n.Name
	}
	taskName := map[uuid.UUID]string{}
	for _, tk := range tasks {
		taskName[tk.ID] = tk.Name
	}
	got, why := map[string]string{}, map[string]string{}
	for _, pl := range p.Placements {
		got[taskName[pl.TaskID]] = nodeName[pl.NodeID]
	}
	for id, r := range p.Unplaced {
		got[taskName[id]] = ""
		why[taskName[id]] = r
	}
	return got, why
}

func TestPlan_StrategiesAndFilters(t *testing.T) {
	for _, tc := range []struct {
		name     string
		strategy string
		nodes    []queue.Node
		ports    map[string][]queue.Port // by node name
		cursor   string                  // round-robin cursor, by node name
		tasks    []queue.Task
		want     map[string]string // task → node ("" = unplaced)
	}{
		{
			name: "binpack picks the fullest node that fits", strategy: "binpack",
			nodes: []queue.Node{node("a", 4*core, 8*gib, reservedRes(1*core, 2*gib)), node("b", 4*core, 8*gib, reservedRes(3*core, 6*gib)),
				node("c", 4*core, 8*gib, reservedRes(3500, 7*gib))},
			tasks: []queue.Task{task("t", 1*core, 1*gib)},
			want:  map[string]string{"t": "b"}, // c is fuller but has only 0.5 cores free
		},
		{
			name: "binpack is the default", strategy: "",
			nodes: []queue.Node{node("a", 4*core, 8*gib), node("b", 4*core, 8*gib, reservedRes(2*core, 4*gib))},
			tasks: []queue.Task{task("t", 1*core, 1*gib)},
			want:  map[string]string{"t": "b"},
		},
		{
			name: "binpack fills one node before the next", strategy: "binpack",
			nodes: []queue.Node{node("a", 2*core, 4*gib), node("b", 2*core, 4*gib)},
			tasks: []queue.Task{task("t1", 1*core, 1*gib), task("t2", 1*core, 1*gib), task("t3", 1*core, 1*gib)},
			want:  map[string]string{"t1": "a", "t2": "a", "t3": "b"},
		},
		{
			name: "spread picks the least allocated node", strategy: "spread",
			nodes: []queue.Node{node("a", 4*core, 8*gib, reservedRes(2*core, 4*gib)), node("b", 4*core, 8*gib, reservedRes(1*core, 1*gib)),
				node("c", 4*core, 8*gib, reservedRes(3*core, 1*gib))},
			tasks: []queue.Task{task("t", 500, 1*gib)},
			want:  map[string]string{"t": "b"},
		},
		{
			name: "spread alternates within one pass", strategy: "spread",
			nodes: []queue.Node{node("a", 2*core, 4*gib), node("b", 2*core, 4*gib)},
			tasks: []queue.Task{task("t1", 1*core, 1*gib), task("t2", 1*core, 1*gib), task("t3", 500, 1*gib)},
			want:  map[string]string{"t1": "a", "t2": "b", "t3": "a"},
		},
		{
			name: "epvm prefers the node with less measured CPU load", strategy: "epvm",
			nodes: []queue.Node{node("a", 4*core, 8*gib, usage(90, 0, 1*gib)), node("b", 4*core, 8*gib, usage(10, 0, 2*gib))},
			tasks: []queue.Task{task("t", 1*core, 1*gib)},
			want:  map[string]string{"t": "b"},
		},
		{
			name: "epvm weighs load1 per offered core when CPU percent is low", strategy: "epvm",
			nodes: []queue.Node{node("a", 4*core, 8*gib, usage(5, 3.6, 1*gib)), node("b", 4*core, 8*gib, usage(20, 0.4, 1*gib))},
			tasks: []queue.Task{task("t", 1*core, 1*gib)},
			want:  map[string]string{"t": "b"},
		},
		{
			name: "epvm counts reservations where nothing is measured yet", strategy: "epvm",
			nodes: []queue.Node{node("a", 4*core, 8*gib, reservedRes(3*core, 6*gib)), node("b", 4*core, 8*gib, reservedRes(1*core, 2*gib))},
			tasks: []queue.Task{task("t", 1*core, 1*gib)},
			want:  map[string]string{"t": "b"},
		},
		{
			name: "epvm prefers the bigger of two idle nodes", strategy: "epvm",
			nodes: []queue.Node{node("a", 2*core, 4*gib), node("b", 8*core, 16*gib)},
			tasks: []queue.Task{task("t", 1*core, 1*gib)},
			want:  map[string]string{"t": "b"},
		},
		{
			name: "round-robin walks the nodes in id order from the stored cursor", strategy: "round-robin",
			nodes:  []queue.Node{node("a", 4*core, 8*gib), node("b", 4*core, 8*gib), node("c", 4*core, 8*gib)},
			cursor: "a",
			tasks:  []queue.Task{task("t1", 100, gib), task("t2", 100, gib), task("t3", 100, gib), task("t4", 100, gib)},
			want:   map[string]string{"t1": "b", "t2": "c", "t3": "a", "t4": "b"},
		},
		{
			name: "round-robin skips nodes that do not fit", strategy: "round-robin",
			nodes: []queue.Node{node("a", 4*core, 8*gib), node("b", 4*core, 8*gib, reservedRes(4*core, 0)), node("c", 4*core, 8*gib, cordoned)},
			tasks: []queue.Task{task("t1", 100, gib), task("t2", 100, gib)},
			want:  map[string]string{"t1": "a", "t2": "a"},
		},
		{
			name: "a task's own strategy overrides the default", strategy: "binpack",
			nodes: []queue.Node{node("a", 4*core, 8*gib, reservedRes(3*core, 6*gib)), node("b", 4*core, 8*gib)},
			tasks: []queue.Task{task("packed", 500, gib), task("spread", 500, gib, withStrategy("spread"))},
			want:  map[string]string{"packed": "a", "spread": "b"},
		},
		{
			name: "cordoned and down nodes get nothing", strategy: "spread",
			nodes: []queue.Node{node("a", 4*core, 8*gib, cordoned), node("b", 4*core, 8*gib, down), node("c", 4*core, 8*gib, reservedRes(3*core, 7*gib))},
			tasks: []queue.Task{task("t", 500, 512<<20)},
			want:  map[string]string{"t": "c"},
		},
		{
			name: "free CPU, memory and disk must each cover the request", strategy: "spread",
			nodes: []queue.Node{node("cpu", 1*core, 64*gib), node("mem", 64*core, 1*gib), node("disk", 64*core, 64*gib, func(n *queue.Node) { n.Capacity.DiskBytes = 1 }),
				node("ok", 8*core, 8*gib, reservedRes(6*core, 6*gib))},
			tasks: []queue.Task{task("t", 2*core, 2*gib, func(t *queue.Task) { t.Resources.DiskBytes = 1 << 20 })},
			want:  map[string]string{"t": "ok"},
		},
		{
			name: "an exact fit fits", strategy: "binpack",
			nodes: []queue.Node{node("a", 2*core, 2*gib, reservedRes(1*core, 1*gib))},
			tasks: []queue.Task{task("t", 1*core, 1*gib)},
			want:  map[string]string{"t": "a"},
		},
		{
			name: "a host port held on a node keeps a task off it", strategy: "binpack",
			nodes: []queue.Node{node("a", 4*core, 8*gib, reservedRes(3*core, 0)), node("b", 4*core, 8*gib)},
			ports: map[string][]queue.Port{"a": {{HostPort: 8080, Protocol: "tcp"}}},
			tasks: []queue.Task{task("web", 100, gib, withPort(8080, "tcp")), task("dns", 100, gib, withPort(8080, "udp"))},
			want:  map[string]string{"web": "b", "dns": "a"}, // udp/8080 is a different port
		},
		{
			name: "two tasks of one pass never share a host port on a node", strategy: "binpack",
			nodes: []queue.Node{node("a", 4*core, 8*gib)},
			tasks: []queue.Task{task("w1", 100, gib, withPort(80, "tcp")), task("w2", 100, gib, withPort(80, "")), task("w3", 100, gib, withPort(81, "tcp"))},
			want:  map[string]string{"w1": "a", "w2": "", "w3": "a"},
		},
		{
			name: "label constraints: = needs the label, != refuses the value", strategy: "binpack",
			nodes: []queue.Node{node("eu-gpu", 4*core, 8*gib, labels("zone", "eu", "gpu", "a100")), node("eu", 4*core, 8*gib, labels("zone", "eu")),
				node("us", 4*core, 8*gib, labels("zone", "us")), node("bare", 4*core, 8*gib)},
			tasks: []queue.Task{
				task("in-eu-no-gpu", 100, gib, withConstraint("zone=eu"), withConstraint("gpu!=a100")),
				task("gpu", 100, gib, withConstraint("gpu=a100")),
				task("not-us", 100, gib, withConstraint("zone!=us"), withConstraint("zone!=eu")),
				task("mars", 100, gib, withConstraint("zone=mars")),
			},
			want: map[string]string{"in-eu-no-gpu": "eu", "gpu": "eu-gpu", "not-us": "bare", "mars": ""},
		},
		{
			name: "a task that fits nowhere is unplaced, the rest still go", strategy: "binpack",
			nodes: []queue.Node{node("a", 2*core, 4*gib)},
			tasks: []queue.Task{task("huge", 8*core, gib), task("small", 1*core, gib)},
			want:  map[string]string{"huge": "", "small": "a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := queue.Snapshot{Nodes: tc.nodes, Ports: map[uuid.UUID][]queue.Port{}}
			for _, n := range tc.nodes {
				if p, ok := tc.ports[n.Name]; ok {
					snap.Ports[n.ID] = p
				}
				if n.Name == tc.cursor {
					snap.RoundRobin = n.ID
				}
			}
			got, why := placedOn(t, tc.strategy, tc.tasks, snap)
			for task, want := range tc.want {
				if got[task] != want {
					t.Errorf("%s → %q, want %q (unplaced because %q)", task, got[task], want, why[task])
				}
			}
		})
	}
}

func TestPlan_ReasonSaysWhyNothingFits(t *testing.T) {
	nodes := []queue.Node{
		node("a", 8*core, 2*gib), node("b", 8*core, 2*gib), node("c", 8*core, 3*gib),
		node("d", 8*core, 16*gib, cordoned),
	}
	_, why := placedOn(t, "binpack", []queue.Task{task("big", 1*core, 4*gib)}, queue.Snapshot{Nodes: nodes})
	if want := "no node fits: 3 short of memory (needs 4GiB), 1 cordoned"; why["big"] != want {
		t.Errorf("reason %q, want %q", why["big"], want)
	}

	nodes = []queue.Node{
		node("a", 8*core, 16*gib, labels("zone", "us")), node("b", 8*core, 16*gib, labels("zone", "eu"), down),
		node("c", 8*core, 16*gib, labels("zone", "eu")), node("d", 1*core, 16*gib, labels("zone", "eu")),
	}
	snap := queue.Snapshot{Nodes: nodes, Ports: map[uuid.UUID][]queue.Port{nodes[2].ID: {{HostPort: 443, Protocol: "tcp"}}}}
	_, why = placedOn(t, "spread", []queue.Task{task("web", 2*core, gib, withConstraint("zone=eu"), withPort(443, "tcp"))}, snap)
	want := "no node fits: 1 down, 1 not matching zone=eu, 1 short of CPU (needs 2 cores), 1 with host port 443/tcp taken"
	if why["web"] != want {
		t.Errorf("reason %q, want %q", why["web"], want)
	}

	_, why = placedOn(t, "round-robin", []queue.Task{task("t", 1, 1)}, queue.Snapshot{})
	if why["t"] != "no node fits: no nodes are registered" {
		t.Errorf("no nodes: %q", why["t"])
	}
}

func TestPlan_RoundRobinReturnsItsCursor(t *testing.T) {
	nodes := []queue.Node{node("a", 4*core, 8*gib), node("b", 4*core, 8*gib), node("c", 4*core, 8*gib)}
	s, _ := New("round-robin")
	p := s.Plan([]queue.Task{task("t1", 1, 1), task("t2", 1, 1)}, queue.Snapshot{Nodes: nodes, RoundRobin: nodes[2].ID})
	if p.RoundRobin == nil || *p.RoundRobin != nodes[1].ID {
		t.Fatalf("cursor = %v, want b (t1 → a, t2 → b)", p.RoundRobin)
	}
	// A cursor naming a node that is gone still means "after it in id order".
	gone := node("bb", 1, 1)
	p = s.Plan([]queue.Task{task("t", 1, 1)}, queue.Snapshot{Nodes: nodes, RoundRobin: gone.ID})
	if len(p.Placements) != 1 || p.Placements[0].NodeID != nodes[2].ID {
		t.Fatalf("after a vanished cursor: %+v, want c", p.Placements)
	}
	b, _ := New("binpack")
	if p := b.Plan([]queue.Task{task("t", 1, 1)}, queue.Snapshot{Nodes: nodes}); p.RoundRobin != nil {
		t.Fatalf("binpack moved the round-robin cursor")
	}
}

func TestNew_UnknownStrategyNamesTheField(t *testing.T) {
	_, err := New("best-effort")
	var fe *queue.FieldError
	if !errors.As(err, &fe) || fe.Field != "strategy" || !strings.Contains(fe.Hint, "epvm") {
		t.Fatalf("New(best-effort) = %v, want a FieldError on strategy listing the strategies", err)
	}
	for _, name := range Names() {
		if _, err := New(name); err != nil {
			t.Errorf("New(%s): %v", name, err)
		}
	}
}

func TestPlan_PrivilegedTasksOnlyWhereTheAgentAllowsThem(t *testing.T) {
	nodes := []queue.Node{
		node("plain", 8*core, 16*gib),
		node("trusted", 8*core, 16*gib, labels(queue.LabelAllowPrivileged, "true")),
	}
	priv := task("priv", core, gib, func(t *queue.Task) { t.Privileged = true })
	hostNet := task("hostnet", core, gib, func(t *queue.Task) { t.Network = "host" })
	plain := task("plain-task", core, gib, withStrategy("spread"))
	got, _ := placedOn(t, "spread", []queue.Task{priv, hostNet, plain}, queue.Snapshot{Nodes: nodes})
	if got["priv"] != "trusted" || got["hostnet"] != "trusted" {
		t.Errorf("privileged tasks went to %q and %q, want trusted", got["priv"], got["hostnet"])
	}
	if got["plain-task"] != "plain" {
		t.Errorf("an ordinary task went to %q, want the emptier plain node", got["plain-task"])
	}
	_, why := placedOn(t, "binpack", []queue.Task{priv}, queue.Snapshot{Nodes: nodes[:1]})
	if want := "no node fits: 1 not allowing privileged containers (start its agent with --allow-privileged)"; why["priv"] != want {
		t.Errorf("reason %q, want %q", why["priv"], want)
	}
}
