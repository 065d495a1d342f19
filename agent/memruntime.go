package agent

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/orchd/orch/queue"
)

// MemRuntime is an in-memory Runtime for scheduler tests and scale
// simulation: containers are bookkeeping and timers, nothing runs.
//
// A started container runs until it is stopped or removed, or, when its run
// time (from Behave, else RunFor) is positive, until that much time has
// passed; then it exits with its exit code (from Behave, else ExitCode).
//
// Set the configuration fields before the runtime is shared; change the
// start failure at run time with SetFailStart. All methods are safe for
// concurrent use.
type MemRuntime struct {
	// StartLatency is how long Start takes before the container runs.
	StartLatency time.Duration
	// RunFor is how long a container runs before it exits on its own; zero
	// means until it is stopped.
	RunFor time.Duration
	// ExitCode is the code a container exits with when RunFor elapses.
	ExitCode int
	// Behave, if set, decides run time and exit code per container, in place
	// of RunFor and ExitCode.
	Behave func(spec ContainerSpec) (runFor time.Duration, exitCode int)
	// StopExitCode is the code a stopped container exits with. It is zero by
	// default, as for the test workload, which exits 0 on SIGTERM.
	StopExitCode int
	// FailStart, if set, is returned by Start and Ping, as by an engine that
	// refuses requests. Wrap ErrImage in it to simulate a missing image.
	FailStart error
	// Output, if set, gives the lines a container writes as it starts (see
	// memruntime_observe.go).
	Output func(spec ContainerSpec) []queue.LogLine

	mu         sync.Mutex
	seq        int
	containers map[string]*memContainer
	names      map[string]string // name → id
}

var _ Runtime = (*MemRuntime)(nil)

type memContainer struct {
	id      string
	seq     int
	spec    ContainerSpec
	running bool
	exit    Exit
	done    chan struct{} // closed on exit
	timer   *time.Timer
	started time.Time
	output  []queue.LogLine
}

// SetFailStart changes FailStart safely while the runtime is in use; nil
// makes the engine healthy again.
func (r *MemRuntime) SetFailStart(err error) {
	r.mu.Lock()
	r.FailStart = err
	r.mu.Unlock()
}

// Ping returns FailStart.
func (r *MemRuntime) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.FailStart
}

// Start waits StartLatency, then creates a running container. Like Docker,
// it refuses a name that is taken, unless the container holding it carries
// the same orch.task and orch.attempt labels, in which case it returns that
// container's id.
func (r *MemRuntime) Start(ctx context.Context, spec ContainerSpec) (string, error) {
	r.mu.Lock()
	latency, fail := r.StartLatency, r.FailStart
	runFor, code, behave, output := r.RunFor, r.ExitCode, r.Behave, r.Output
	r.mu.Unlock()
	if fail != nil {
		return "", fmt.Errorf("memruntime: start %s: %w", spec.Name, fail)
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("memruntime: start %s: %w", spec.Name, ctx.Err())
		}
	} else if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("memruntime: start %s: %w", spec.Name, err)
	}
	if behave != nil {
		// Outside the lock: Behave may take its time or call back in.
		runFor, code = behave(spec)
	}
	started := time.Now()
	var lines []queue.LogLine
	if output != nil {
		lines = stampOutput(output(spec), started)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.FailStart != nil {
		return "", fmt.Errorf("memruntime: start %s: %w", spec.Name, r.FailStart)
	}
	if r.containers == nil {
		r.containers = map[string]*memContainer{}
		r.names = map[string]string{}
	}
	if spec.Name != "" {
		if id, ok := r.names[spec.Name]; ok {
			old := r.containers[id].spec.Labels
			task := spec.Labels[LabelTask]
			if task != "" && old[LabelTask] == task && old[LabelAttempt] == spec.Labels[LabelAttempt] {
				return id, nil
			}
			return "", fmt.Errorf("memruntime: start %s: name is taken by container %s", spec.Name, id)
		}
	}

	r.seq++
	c := &memContainer{
		id:      fmt.Sprintf("mem%09d", r.seq),
		seq:     r.seq,
		spec:    cloneSpec(spec),
		running: true,
		done:    make(chan struct{}),
		started: started,
		output:  lines,
	}
	if c.spec.Name == "" {
		c.spec.Name = c.id
	}
	r.containers[c.id] = c
	r.names[c.spec.Name] = c.id
	if runFor > 0 {
		c.timer = time.AfterFunc(runFor, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.exitLocked(c, Exit{Code: code})
		})
	}
	return c.id, nil
}

func cloneSpec(s ContainerSpec) ContainerSpec {
	s.Command = append([]string(nil), s.Command...)
	s.Env = maps.Clone(s.Env)
	s.Ports = append(s.Ports[:0:0], s.Ports...)
	s.Labels = maps.Clone(s.Labels)
	return s
}

// exitLocked ends c, if it still runs. r.mu must be held.
func (r *MemRuntime) exitLocked(c *memContainer, e Exit) {
	if !c.running {
		return
	}
	c.running = false
	c.exit = e
	if c.timer != nil {
		c.timer.Stop()
	}
	close(c.done)
}

// Wait blocks until the container exits or ctx is done. A container that has
// already exited returns at once.
func (r *MemRuntime) Wait(ctx context.Context, id string) (Exit, error) {
	r.mu.Lock()
	c, ok := r.containers[id]
	r.mu.Unlock()
	if !ok {
		return Exit{}, fmt.Errorf("memruntime: wait %s: no such container", id)
	}
	select {
	case <-c.done:
		r.mu.Lock()
		defer r.mu.Unlock()
		return c.exit, nil
	case <-ctx.Done():
		return Exit{}, fmt.Errorf("memruntime: wait %s: %w", id, ctx.Err())
	}
}

// Stop makes a running container exit at once with StopExitCode; grace is
// ignored. A container that is gone or already stopped is not an error.
func (r *MemRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok {
		r.exitLocked(c, Exit{Code: r.StopExitCode})
	}
	return nil
}

// Remove deletes the container, killing it (exit code 137) if it runs.
// Removing one that is gone is not an error.
func (r *MemRuntime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return nil
	}
	r.exitLocked(c, Exit{Code: 137, Error: "removed"})
	delete(r.containers, id)
	if r.names[c.spec.Name] == id {
		delete(r.names, c.spec.Name)
	}
	return nil
}

// List returns the containers carrying all of the given labels, in the order
// they were started.
func (r *MemRuntime) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	var found []*memContainer
next:
	for _, c := range r.containers {
		for k, v := range labels {
			if got, ok := c.spec.Labels[k]; !ok || got != v {
				continue next
			}
		}
		found = append(found, c)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].seq < found[j].seq })
	out := make([]Container, len(found))
	for i, c := range found {
		out[i] = Container{
			ID:      c.id,
			Name:    c.spec.Name,
			Labels:  maps.Clone(c.spec.Labels),
			Running: c.running,
		}
		if !c.running {
			out[i].ExitCode = c.exit.Code
			out[i].Error = c.exit.Error
		}
	}
	r.mu.Unlock()
	return out, nil
}
