package main

import (
	"os"
	"runtime/debug"
)

// agentGCPercent is the agent's default GOGC. The agent runs on every
// machine beside the workloads, and its live heap is a few megabytes: at
// Go's default of 100 the room the heap may grow into before a collection
// is as big again, a tenth of the agent's RSS holding 250 containers.
// Collections of so small a heap are cheap (README, Performance). GOGC in
// the environment still decides.
const agentGCPercent = 50

func tuneAgentGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(agentGCPercent)
	}
}
