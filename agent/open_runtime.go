package agent

import (
	"context"
	"fmt"

	"github.com/orchd/orch/queue"
)

// Names of the container runtimes an agent can use (`orch agent --runtime`).
const (
	RuntimeDocker = "docker"
	// RuntimeMemory runs nothing: containers are bookkeeping that behaves
	// like the test workload (WorkloadBehavior). It is for loading a
	// cluster without Docker, as `orch bench` does.
	RuntimeMemory = "memory"
)

// OpenRuntime opens the runtime of that name ("" is Docker) and returns it
// with the function that closes it.
func OpenRuntime(ctx context.Context, name string) (Runtime, func(), error) {
	switch name {
	case "", RuntimeDocker:
		rt, err := NewDockerRuntime(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to Docker: %w", err)
		}
		return rt, func() { rt.Close() }, nil
	case RuntimeMemory:
		return &MemRuntime{Behave: WorkloadBehavior}, func() {}, nil
	}
	return nil, nil, queue.Invalid("runtime", fmt.Sprintf("unknown runtime %q", name), "use docker or memory")
}
