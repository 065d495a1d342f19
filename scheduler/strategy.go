package scheduler

import (
	"github.com/orchd/orch/queue"
)

// strategy scores a candidate node for a task; the highest score wins (ties
// go to the node whose name sorts first). Round-robin is not a score but a
// walk; Plan handles it (see ring).
type strategy interface {
	name() string
	score(a *ask, c *candidate) float64
}

// DefaultStrategy is used when neither the coordinator nor the task names one.
const DefaultStrategy = queue.DefaultStrategy

var strategies = map[string]strategy{
	queue.StrategyBinpack:    binpack{},
	queue.StrategySpread:     spread{},
	queue.StrategyEPVM:       epvm{},
	queue.StrategyRoundRobin: roundRobin{},
}

// lookup returns the named strategy; "" is the default. An unknown name is a
// *queue.FieldError naming "strategy".
func lookup(name string) (strategy, error) {
	if name == "" {
		name = DefaultStrategy
	}
	if err := queue.CheckStrategy(name); err != nil {
		return nil, err
	}
	return strategies[name], nil
}

// Names lists the strategies, sorted.
func Names() []string { return append([]string(nil), queue.Strategies...) }

// dims are the resource dimensions, in the order of the arrays below.
const (
	dimCPU = iota
	dimMemory
	dimDisk
	nDims
)

func vec(r queue.Resources) [nDims]float64 {
	return [nDims]float64{float64(r.CPUMillis), float64(r.MemoryBytes), float64(r.DiskBytes)}
}

// ask is one task's request as the strategies read it. Scoring runs once
// per task and node, so what depends only on the task is computed once.
type ask struct {
	req [nDims]float64
	// epvm's L^(req/capacity) − 1 for the last capacity seen, per
	// dimension: nodes of one size share it, so most lookups hit.
	lastInv, lastGrow [nDims]float64
}

func newAsk(r queue.Resources) ask { return ask{req: vec(r)} }

// allocated is the mean share of capacity in use after placing a, over the
// dimensions the node offers at all.
func allocated(a *ask, c *candidate) float64 {
	if c.dims == 0 {
		return 0
	}
	s := c.usedShare
	for d := 0; d < nDims; d++ {
		s += a.req[d] * c.inv[d]
	}
	return s / float64(c.dims)
}

// binpack prefers the fullest node that still fits (best fit), leaving whole
// nodes free for large tasks.
type binpack struct{}

func (binpack) name() string                       { return queue.StrategyBinpack }
func (binpack) score(a *ask, c *candidate) float64 { return allocated(a, c) }

// spread prefers the least allocated node.
type spread struct{}

func (spread) name() string                       { return queue.StrategySpread }
func (spread) score(a *ask, c *candidate) float64 { return -allocated(a, c) }

// roundRobin does not score: Plan walks the nodes in id order from the
// cursor the database keeps (see ring).
type roundRobin struct{}

func (roundRobin) name() string                   { return queue.StrategyRoundRobin }
func (roundRobin) score(*ask, *candidate) float64 { return 0 }
