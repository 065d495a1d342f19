package agent

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

func collectLogs(t *testing.T, rt LogReader, ctx context.Context, id string, since time.Time, follow bool) []queue.LogLine {
	t.Helper()
	var got []queue.LogLine
	if err := rt.Logs(ctx, id, since, follow, func(l queue.LogLine) error { got = append(got, l); return nil }); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	return got
}

func byStream(lines []queue.LogLine, s queue.LogStream) []string {
	var out []string
	for _, l := range lines {
		if l.Stream == s {
			out = append(out, l.Text)
		}
	}
	return out
}

func TestDockerLogs_BothStreamsInOrderWithTimes(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	id := d.start(ctx, d.spec("logs", "-logs", "5", "-stderr-logs", "3"))
	if _, err := d.rt.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	lines := collectLogs(t, d.rt, ctx, id, time.Time{}, false)
	if got, want := byStream(lines, queue.Stdout), []string{"line 1", "line 2", "line 3", "line 4", "line 5"}; !slices.Equal(got, want) {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got, want := byStream(lines, queue.Stderr), []string{"line 1", "line 2", "line 3"}; !slices.Equal(got, want) {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	// Each stream's lines come in time order. Across the two streams the
	// engine stamps each line when it reads it from that stream's pipe, so
	// lines written within microseconds of each other may interleave out of
	// time order.
	last := map[queue.LogStream]time.Time{}
	for i, l := range lines {
		if l.At.IsZero() || time.Since(l.At) > time.Minute || l.At.Before(last[l.Stream]) {
			t.Errorf("line %d (%s) has time %v (previous on its stream %v)", i, l.Stream, l.At, last[l.Stream])
		}
		last[l.Stream] = l.At
	}
	// Reading on from a line's time gives it again (the engine's since is
	// inclusive) and everything after it.
	since := lines[2].At
	var want []queue.LogLine
	for _, l := range lines {
		if !l.At.Before(since) {
			want = append(want, l)
		}
	}
	again := collectLogs(t, d.rt, ctx, id, since, false)
	if len(again) != len(want) || len(want) == len(lines) || !again[0].At.Equal(want[0].At) || again[0].Text != want[0].Text {
		t.Errorf("since %v: %d lines, first %+v; want %d, first %+v", since, len(again), again, len(want), want[0])
	}
}

func TestDockerLogs_FollowEndsWhenTheContainerStops(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	id := d.start(ctx, d.spec("follow", "-logs", "2", "-sleep", "1500ms"))
	start := time.Now()
	lines := collectLogs(t, d.rt, ctx, id, time.Time{}, true)
	if got := byStream(lines, queue.Stdout); !slices.Equal(got, []string{"line 1", "line 2"}) {
		t.Errorf("followed %q", got)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("follow returned after %s, before the container stopped", el)
	}
	info := d.inspect(ctx, id)
	if info.State.Running {
		t.Errorf("follow returned while the container runs")
	}
}

func TestDockerStats_MemoryAndCPUOfARunningContainer(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	spec := d.spec("stats", "-mem", "48MiB", "-sleep", "forever")
	spec.MemoryBytes = 128 << 20
	id := d.start(ctx, spec)
	d.waitLog(ctx, id, "allocated")
	first, err := d.rt.Stats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	second, err := d.rt.Stats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if second.MemoryUsedBytes < 48<<20 || second.MemoryUsedBytes > 128<<20 || second.MemoryLimitBytes != 128<<20 {
		t.Errorf("memory %d of %d; want at least the 48 MiB the workload holds, under its 128 MiB limit",
			second.MemoryUsedBytes, second.MemoryLimitBytes)
	}
	if !second.At.After(first.At) || second.SystemNanos <= first.SystemNanos || second.OnlineCPUs < 1 {
		t.Errorf("samples do not advance: %+v then %+v", first, second)
	}
	if p := cpuPercent(first, second); p < 0 || p > float64(100*second.OnlineCPUs) {
		t.Errorf("cpu %v%%", p)
	}
	t.Logf("stats: %s", fmt.Sprintf("%.1f%% cpu, %d MiB", cpuPercent(first, second), second.MemoryUsedBytes>>20))
}

func TestFrameWriter_JoinsSplitLinesAndKeepsTheirTime(t *testing.T) {
	var got []queue.LogLine
	w := &frameWriter{stream: queue.Stderr, fn: func(l queue.LogLine) error { got = append(got, l); return nil }}
	for _, frame := range []string{
		"2030-01-02T03:04:05.000000001Z one\n",
		"2030-01-02T03:04:05.000000002Z split ",
		"2030-01-02T03:04:05.000000003Z line\r\n",
		"2030-01-02T03:04:05.000000004Z no newline at the end",
	} {
		if _, err := w.Write([]byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, l := range got {
		texts = append(texts, l.Text)
	}
	if !slices.Equal(texts, []string{"one", "split line", "no newline at the end"}) {
		t.Fatalf("lines = %q", texts)
	}
	if got[1].At.Nanosecond() != 2 || got[1].Stream != queue.Stderr {
		t.Errorf("split line = %+v, want the time of its first part", got[1])
	}
}
