package queue

import (
	"fmt"
	"strings"
)

// Placement strategies. The scheduler implements them; their names live here
// so that validation, the store and the scheduler agree on one list.
const (
	// StrategyBinpack puts a task on the fullest node that still fits it
	// (best fit), keeping whole nodes free for large tasks. The default.
	StrategyBinpack = "binpack"
	// StrategySpread puts a task on the least allocated node.
	StrategySpread = "spread"
	// StrategyEPVM puts a task where it adds the least E-PVM cost, weighing
	// each node's measured CPU, memory and disk load.
	StrategyEPVM = "epvm"
	// StrategyRoundRobin walks the nodes in a fixed order, shared by every
	// coordinator through the database, and takes the next one that fits.
	StrategyRoundRobin = "round-robin"
)

// DefaultStrategy is used when neither the coordinator nor the task names one.
const DefaultStrategy = StrategyBinpack

// Strategies lists every strategy name, sorted.
var Strategies = []string{StrategyBinpack, StrategyEPVM, StrategyRoundRobin, StrategySpread}

// ValidStrategy reports whether name is a strategy ("" is not).
func ValidStrategy(name string) bool {
	for _, s := range Strategies {
		if s == name {
			return true
		}
	}
	return false
}

// CheckStrategy returns a *FieldError naming "strategy" unless name is a
// strategy or "" (the default).
func CheckStrategy(name string) error {
	if name == "" || ValidStrategy(name) {
		return nil
	}
	return Invalid("strategy", fmt.Sprintf("unknown strategy %q", name), "use one of "+strings.Join(Strategies, ", "))
}

// EffectiveStrategy is the strategy that places t when the coordinator's
// default is def.
func (t *Task) EffectiveStrategy(def string) string {
	switch {
	case t.Strategy != "" && ValidStrategy(t.Strategy):
		return t.Strategy
	case def != "":
		return def
	}
	return DefaultStrategy
}
