package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/orchd/orch/queue"
)

var (
	_ LogReader   = (*DockerRuntime)(nil)
	_ StatsReader = (*DockerRuntime)(nil)
)

// Logs reads the container's output through the Engine API with
// timestamps, demultiplexing stdout from stderr with stdcopy. The engine
// sends each message it logged as one frame, "TIMESTAMP text"; a line the
// engine split (longer than 16 KiB) comes as several frames without a
// newline but the last, and is joined back here.
func (d *DockerRuntime) Logs(ctx context.Context, id string, since time.Time, follow bool, fn func(queue.LogLine) error) error {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Timestamps: true}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := d.cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return fmt.Errorf("docker: logs %.12s: %w", id, err)
	}
	defer rc.Close()
	out := &frameWriter{stream: queue.Stdout, fn: fn}
	errw := &frameWriter{stream: queue.Stderr, fn: fn}
	if _, err := stdcopy.StdCopy(out, errw, rc); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("docker: logs %.12s: %w", id, err)
	}
	if err := out.finish(); err != nil {
		return err
	}
	return errw.finish()
}

// frameWriter turns the frames of one stream into lines. stdcopy calls
// Write once per frame.
type frameWriter struct {
	stream  queue.LogStream
	fn      func(queue.LogLine) error
	partial []byte    // a line the engine split, so far
	at      time.Time // the time of its first part
}

func (w *frameWriter) Write(p []byte) (int, error) {
	n := len(p)
	ts, text, ok := bytes.Cut(p, []byte(" "))
	at, err := time.Parse(time.RFC3339Nano, string(ts))
	if !ok || err != nil {
		// Not timestamped (should not happen with Timestamps set): keep it all.
		at, text = time.Now(), p
	}
	if len(w.partial) == 0 {
		w.at = at
	}
	w.partial = append(w.partial, text...)
	if !bytes.HasSuffix(w.partial, []byte("\n")) {
		if len(w.partial) > queue.MaxLogLineBytes { // stored cut anyway; do not grow without bound
			return n, w.emit()
		}
		return n, nil
	}
	return n, w.emit()
}

func (w *frameWriter) emit() error {
	line := bytes.TrimSuffix(w.partial, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	err := w.fn(queue.LogLine{At: w.at, Stream: w.stream, Text: string(line)})
	w.partial = w.partial[:0]
	return err
}

// finish emits a last line that had no newline.
func (w *frameWriter) finish() error {
	if len(w.partial) == 0 {
		return nil
	}
	return w.emit()
}

// Stats takes one sample of the container's counters (the engine's
// one-shot stats, which answer at once instead of waiting for a second
// sample). Memory excludes the inactive page cache, as `docker stats` does.
func (d *DockerRuntime) Stats(ctx context.Context, id string) (ContainerStats, error) {
	resp, err := d.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return ContainerStats{}, fmt.Errorf("docker: stats %.12s: %w", id, err)
	}
	defer resp.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return ContainerStats{}, fmt.Errorf("docker: stats %.12s: decoding: %w", id, err)
	}
	used := s.MemoryStats.Usage
	cache := s.MemoryStats.Stats["inactive_file"] // cgroup v2
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok {
		cache = v // cgroup v1
	}
	if cache < used {
		used -= cache
	}
	cpus := int(s.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = len(s.CPUStats.CPUUsage.PercpuUsage)
	}
	return ContainerStats{
		At:               s.Read,
		CPUNanos:         s.CPUStats.CPUUsage.TotalUsage,
		SystemNanos:      s.CPUStats.SystemUsage,
		OnlineCPUs:       cpus,
		MemoryUsedBytes:  int64(used),
		MemoryLimitBytes: int64(s.MemoryStats.Limit),
	}, nil
}
