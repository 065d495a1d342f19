package scheduler

import (
	"math"

	"github.com/orchd/orch/queue"
)

// Lieb is Lieb's square-ice constant, (4/3)^(3/2), the base of the E-PVM
// cost function as the seed's book uses it.
const Lieb = 1.5396007178390020386910634147

var lnLieb = math.Log(Lieb)

// epvm is the E-PVM ("Enhanced Parallel Virtual Machine", Amir et al.)
// opportunity-cost strategy: the cost of a resource grows exponentially with
// its utilisation, and a task goes where it adds the least cost. For a task
// t and a node n, over the dimensions r ∈ {CPU, memory, disk} the node
// offers:
//
//	cost(t, n) = Σ_r  L^(u_r + t_r/C_r) − L^(u_r)        L = Lieb ≈ 1.5396
//
//	u_cpu  = (max(reserved_cpu, busy·C_cpu) + placed_cpu) / C_cpu
//	busy   = min(1, max(cpu_percent/100, load1/cores))    (0 if never measured)
//	u_mem  = (max(reserved_mem, memory_used) + placed_mem) / C_mem
//	u_disk = (max(reserved_disk, disk_used) + placed_disk) / C_disk
//
// where C_r is the node's capacity, t_r the task's request, reserved_r what
// the node's live tasks had reserved when the pass read it, the measured
// values are the agent's latest report (queue.Node.Usage; cores are the
// cores the node offers), and placed_r is what this pass has already put on
// the node. The score is −cost: the cheapest node wins.
//
// Taking the larger of reservation and measurement makes a node that is busy
// with work orch did not reserve (a noisy neighbour, a task using more than
// it asked for) look as full as it is, while a node whose tasks just started
// and do not show in the measurement yet still counts what it promised.
// Because L^u is convex, the same request costs more on a busier node, so
// E-PVM balances load, and it weighs a dimension more the closer it is to
// full.
//
// The book's version computes its CPU term as L^load + L^((k+1)/m) − L^load
// − L^(k/m), so the load cancels and CPU never changes the choice; here the
// CPU term is the marginal cost of the task's CPU on top of the node's load.
// The book's task-count term (k tasks out of an assumed maximum of m = 4) is
// left out: orch reserves real requests, and a count would make a node with
// four tiny tasks look full.
//
// Computed as Σ_r L^(u_r) · (L^(t_r/C_r) − 1): the first factor belongs to
// the node and is kept current as the pass places tasks (candidate.base),
// the second is the same on nodes of one size (ask.lastGrow).
type epvm struct{}

func (epvm) name() string { return queue.StrategyEPVM }

func (epvm) score(a *ask, c *candidate) float64 {
	var cost float64
	for d := 0; d < nDims; d++ {
		if a.req[d] == 0 || c.inv[d] == 0 {
			continue
		}
		if c.inv[d] != a.lastInv[d] {
			a.lastInv[d] = c.inv[d]
			a.lastGrow[d] = math.Expm1(a.req[d] * c.inv[d] * lnLieb)
		}
		cost += c.base[d] * a.lastGrow[d]
	}
	return -cost
}

// measured is what the node's agent last measured, per dimension, in the
// units of its capacity (CPU as millicores busy).
func measured(n *queue.Node) [nDims]float64 {
	if n.Usage.At == nil {
		return [nDims]float64{}
	}
	busy := n.Usage.CPUPercent / 100
	if cores := float64(n.Capacity.CPUMillis) / 1000; cores > 0 {
		busy = math.Max(busy, n.Usage.Load1/cores)
	}
	busy = math.Min(1, math.Max(0, busy))
	return [nDims]float64{busy * float64(n.Capacity.CPUMillis), float64(n.Usage.MemoryUsedBytes), float64(n.Usage.DiskUsedBytes)}
}

// epvmBase is L^(u_r) per dimension for the candidate as it stands.
func (c *candidate) epvmBase() {
	for d := 0; d < nDims; d++ {
		if c.inv[d] == 0 {
			c.base[d] = 0
			continue
		}
		u := (math.Max(c.reserved[d], c.measured[d]) + c.placed[d]) * c.inv[d]
		c.base[d] = math.Exp(u * lnLieb)
	}
}
