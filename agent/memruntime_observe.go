package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/orchd/orch/queue"
)

var (
	_ LogReader   = (*MemRuntime)(nil)
	_ StatsReader = (*MemRuntime)(nil)
)

// stampOutput gives lines without a time distinct times from start on, a
// microsecond apart, so that they keep their order when read back.
func stampOutput(lines []queue.LogLine, start time.Time) []queue.LogLine {
	out := make([]queue.LogLine, len(lines))
	for i, l := range lines {
		if l.At.IsZero() {
			l.At = start.Add(time.Duration(i+1) * time.Microsecond)
		}
		if l.Stream == "" {
			l.Stream = queue.Stdout
		}
		out[i] = l
	}
	return out
}

// Logs replays the container's Output after since. With follow it then
// waits for the container to exit (nothing more is ever written).
func (r *MemRuntime) Logs(ctx context.Context, id string, since time.Time, follow bool, fn func(queue.LogLine) error) error {
	r.mu.Lock()
	c, ok := r.containers[id]
	var lines []queue.LogLine
	if ok {
		lines = c.output
	}
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("memruntime: logs %s: no such container", id)
	}
	for _, l := range lines {
		if !since.IsZero() && l.At.Before(since) {
			continue
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats reports a container as busy with half of the CPU it asked for
// since it started, using half of its memory limit (8 MiB without one), on
// a machine of one core.
func (r *MemRuntime) Stats(ctx context.Context, id string) (ContainerStats, error) {
	if err := ctx.Err(); err != nil {
		return ContainerStats{}, err
	}
	r.mu.Lock()
	c, ok := r.containers[id]
	r.mu.Unlock()
	if !ok {
		return ContainerStats{}, fmt.Errorf("memruntime: stats %s: no such container", id)
	}
	now := time.Now()
	elapsed := uint64(now.Sub(c.started))
	mem := c.spec.MemoryBytes / 2
	if mem == 0 {
		mem = 8 << 20
	}
	return ContainerStats{
		At:               now,
		CPUNanos:         elapsed * uint64(c.spec.CPUMillis) / 2000,
		SystemNanos:      uint64(now.UnixNano()),
		OnlineCPUs:       1,
		MemoryUsedBytes:  mem,
		MemoryLimitBytes: c.spec.MemoryBytes,
	}, nil
}
