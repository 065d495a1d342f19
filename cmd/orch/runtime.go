package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/queue"
)

// Container runtimes an agent can use.
const (
	runtimeDocker = "docker"
	// runtimeMemory runs nothing: containers are bookkeeping that behaves
	// like the test workload (agent.WorkloadBehavior). It is for loading a
	// cluster without Docker, as `orch bench` does.
	runtimeMemory = "memory"
)

func runtimeFlag(cmd *cobra.Command) {
	cmd.Flags().String("runtime", runtimeDocker, "container runtime: docker, or memory (a simulation: nothing runs; "+
		"a task's -sleep D and -exit N arguments are honoured as by the test workload)")
}

// agentRuntime opens the named runtime and returns it with its closer.
func agentRuntime(ctx context.Context, name string) (agent.Runtime, func(), error) {
	switch name {
	case "", runtimeDocker:
		rt, err := agent.NewDockerRuntime(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to Docker: %w", err)
		}
		return rt, func() { rt.Close() }, nil
	case runtimeMemory:
		return &agent.MemRuntime{Behave: agent.WorkloadBehavior}, func() {}, nil
	}
	return nil, nil, queue.Invalid("runtime", fmt.Sprintf("unknown runtime %q", name), "use docker or memory")
}
