package scheduler

import (
	"math"
	"testing"

	"github.com/orchd/orch/queue"
)

// bookEPVM is the E-PVM score of the seed's book (lower cost wins), kept here
// to show what orch's version changes: its CPU term is
// L^load + L^((k+1)/4) − L^load − L^(k/4), in which the load cancels.
func bookEPVM(req queue.Resources, n *queue.Node) float64 {
	const maxJobs = 4.0
	k := float64(n.LiveTasks)
	cpuLoad := n.Usage.CPUPercent / 100
	memAllocated := float64(n.Usage.MemoryUsedBytes + n.Reserved.MemoryBytes)
	memPct := memAllocated / float64(n.Capacity.MemoryBytes)
	newMemPct := (memAllocated + float64(req.MemoryBytes)) / float64(n.Capacity.MemoryBytes)
	memCost := math.Pow(Lieb, newMemPct) + math.Pow(Lieb, (k+1)/maxJobs) - math.Pow(Lieb, memPct) - math.Pow(Lieb, k/maxJobs)
	cpuCost := math.Pow(Lieb, cpuLoad) + math.Pow(Lieb, (k+1)/maxJobs) - math.Pow(Lieb, cpuLoad) - math.Pow(Lieb, k/maxJobs)
	return memCost + cpuCost
}

func TestEPVM_CPUTermChangesTheChoice(t *testing.T) {
	// a has a busy CPU and little memory in use; b is the other way round,
	// mildly. The book's cost sees only memory and picks a; orch's also
	// weighs CPU and picks b.
	a := node("a", 4*core, 8*gib, usage(95, 0, 1*gib))
	b := node("b", 4*core, 8*gib, usage(5, 0, 2*gib))
	req := queue.Resources{CPUMillis: 2 * core, MemoryBytes: 1 * gib}
	if ca, cb := bookEPVM(req, &a), bookEPVM(req, &b); !(ca < cb) {
		t.Fatalf("book's cost a=%.4f b=%.4f: expected the book to prefer a", ca, cb)
	}
	sa, sb := epvmScore(req, &a), epvmScore(req, &b)
	if !(sb > sa) {
		t.Fatalf("orch's score a=%.4f b=%.4f, want b (idle CPU) ahead", sa, sb)
	}
	// And without the CPU measurement the two would swap back: the CPU term
	// is what decides.
	a.Usage.CPUPercent, b.Usage.CPUPercent = 50, 50
	if sa, sb := epvmScore(req, &a), epvmScore(req, &b); !(sa > sb) {
		t.Fatalf("with equal CPU load: a=%.4f b=%.4f, want a (less memory used) ahead", sa, sb)
	}
	got, _ := placedOn(t, "epvm", []queue.Task{task("t", 2*core, 1*gib)}, queue.Snapshot{Nodes: []queue.Node{
		node("a", 4*core, 8*gib, usage(95, 0, 1*gib)), node("b", 4*core, 8*gib, usage(5, 0, 2*gib))}})
	if got["t"] != "b" {
		t.Fatalf("epvm placed on %q, want b", got["t"])
	}
}

// epvmScore is orch's E-PVM score for req on n as a pass's first task sees it.
func epvmScore(req queue.Resources, n *queue.Node) float64 {
	a := newAsk(req)
	return epvm{}.score(&a, newCandidate(n, nil))
}

func TestEPVM_CostFormula(t *testing.T) {
	// One dimension by hand: 4 cores, 1 reserved, 50% busy (2 cores measured),
	// a 1-core task: u = max(1, 2)/4 = 0.5, d = 0.25.
	n := node("a", 4*core, 8*gib, reservedRes(1*core, 0), usage(50, 0, 0))
	n.Capacity.DiskBytes = 0
	got := -epvmScore(queue.Resources{CPUMillis: 1 * core}, &n)
	want := math.Pow(Lieb, 0.75) - math.Pow(Lieb, 0.5)
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("cost %.6f, want %.6f", got, want)
	}
	if math.Abs(Lieb-math.Pow(4.0/3, 1.5)) > 1e-15 {
		t.Fatalf("Lieb = %v, want (4/3)^(3/2)", Lieb)
	}
}
