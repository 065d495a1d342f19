package agent

import (
	"context"
	"errors"
	"time"

	"github.com/orchd/orch/queue"
)

// Container labels. They carry ownership, so that an agent that restarts can
// tell its own containers from anyone else's without asking the database.
const (
	LabelTask    = "orch.task"
	LabelNode    = "orch.node"
	LabelAttempt = "orch.attempt"
	LabelName    = "orch.name"
)

// ErrImage marks a failure to find or pull a task's image, as opposed to a
// failure of the container itself.
var ErrImage = errors.New("image unavailable")

// ContainerSpec is everything a runtime needs to start one attempt of a task.
type ContainerSpec struct {
	Name        string // readable in `docker ps`, unique per attempt
	Image       string
	Command     []string
	Env         map[string]string
	CPUMillis   int64
	MemoryBytes int64
	Ports       []queue.Port
	Labels      map[string]string
	// Privileged and Network "host"/"none" are only ever set for tasks an
	// admin asked for on an agent that allows them. An unprivileged
	// container also runs with no-new-privileges.
	Privileged bool
	Network    string
	// PidsLimit bounds the container's processes (0: no limit).
	PidsLimit int64
	// RegistryAuth, if set, gives the login to pull Image with, in the
	// engine's encoded form ("" for an anonymous pull). The runtime calls
	// it only when it must pull, so a present image costs no lookup.
	RegistryAuth func(ctx context.Context) (string, error)
	// Mounts are the task's volumes: named volumes, made on first use and
	// kept, and host paths (only for an admin's task on an agent that
	// allows them, below its prefix).
	Mounts []queue.Mount
	// LogMaxBytes and LogMaxFiles bound the engine's own log files of the
	// container, where its log driver keeps them on disk (0: the engine's
	// default).
	LogMaxBytes int64
	LogMaxFiles int
}

// Container is what a runtime knows about one container it holds.
type Container struct {
	ID      string
	Name    string
	Labels  map[string]string
	Running bool
	// ExitCode and Error describe how a container that is no longer running ended.
	ExitCode int
	Error    string
}

// Exit is how a container ended.
type Exit struct {
	Code      int
	Error     string
	OOMKilled bool
}

// Runtime is a container engine as the agent uses it: Docker for real, an
// in-memory fake for scheduling and scale simulation.
type Runtime interface {
	// Ping reports whether the engine answers.
	Ping(ctx context.Context) error
	// Start makes sure the image is present (pulling it only when it is
	// missing locally), then creates and starts the container. Image errors
	// wrap ErrImage.
	Start(ctx context.Context, spec ContainerSpec) (id string, err error)
	// Wait blocks until the container exits and returns how it ended.
	Wait(ctx context.Context, id string) (Exit, error)
	// Stop asks the container to stop, killing it after grace.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes the container; removing one that is gone is not an error.
	Remove(ctx context.Context, id string) error
	// List returns the containers that carry all of the given labels.
	List(ctx context.Context, labels map[string]string) ([]Container, error)
}
