package agent

import (
	"context"
	"time"

	"github.com/orchd/orch/queue"
)

// LogReader is implemented by runtimes that can read back what a container
// wrote. It is optional, so that Runtime stays small: an agent whose
// runtime does not read logs ships none.
type LogReader interface {
	// Logs calls fn with each line of the container's stdout and stderr
	// written after since (from the start when since is zero), in the order
	// the engine recorded them. With follow it keeps reading until the
	// container stops (then returns nil) or ctx ends; without, it returns
	// once it has read what is there. An error from fn stops it and is
	// returned.
	Logs(ctx context.Context, id string, since time.Time, follow bool, fn func(queue.LogLine) error) error
}

// StatsReader is implemented by runtimes that can measure a container.
type StatsReader interface {
	// Stats samples the container's CPU and memory counters once.
	Stats(ctx context.Context, id string) (ContainerStats, error)
}

// ContainerStats is one sample of a container's counters. CPU usage is the
// change of CPUNanos over the change of SystemNanos between two samples.
type ContainerStats struct {
	At               time.Time
	CPUNanos         uint64 // CPU time the container has used, all cores
	SystemNanos      uint64 // CPU time the whole machine has used, all cores
	OnlineCPUs       int
	MemoryUsedBytes  int64 // without the page cache, as `docker stats` shows it
	MemoryLimitBytes int64
}

// cpuPercent is the container's CPU use between prev and cur in percent of
// one core (150 = one and a half cores), as `docker stats` computes it.
func cpuPercent(prev, cur ContainerStats) float64 {
	if cur.SystemNanos <= prev.SystemNanos || cur.CPUNanos < prev.CPUNanos {
		return 0
	}
	cpus := cur.OnlineCPUs
	if cpus <= 0 {
		cpus = 1
	}
	return float64(cur.CPUNanos-prev.CPUNanos) / float64(cur.SystemNanos-prev.SystemNanos) * float64(cpus) * 100
}
