package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/scheduler"
)

// agentRig is one agent over its own database and a runtime, with a way
// to place tasks on it (a scheduling pass, as a coordinator would run).
type agentRig struct {
	t     *testing.T
	store *postgres.Store
	agent *Agent
	sched *scheduler.Scheduler
}

func newAgentRig(t *testing.T, rt Runtime, opts Options) *agentRig {
	t.Helper()
	store, err := postgres.Open(context.Background(), pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if opts.Name == "" {
		opts.Name = "n-" + uuid.NewString()[:8]
	}
	if opts.Capacity == (queue.Resources{}) {
		opts.Capacity = queue.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30}
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	a := New(store, rt, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if err := a.Register(ctx); err != nil {
		t.Fatal(err)
	}
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	sched, err := scheduler.New("binpack")
	if err != nil {
		t.Fatal(err)
	}
	return &agentRig{t: t, store: store, agent: a, sched: sched}
}

// submit creates a task and places it.
func (r *agentRig) submit(spec queue.TaskSpec) queue.Task {
	r.t.Helper()
	ctx := context.Background()
	if spec.Image == "" {
		spec.Image = "mem"
	}
	spec.Normalize()
	tk, err := r.store.CreateTask(ctx, uuid.Nil, spec)
	if err != nil {
		r.t.Fatal(err)
	}
	schedule(r.t, r.store, postgres.PassOpts{Batch: 10, By: "test"}, r.sched.Plan)
	return tk
}

// schedule runs scheduling passes as a coordinator's loop does: again while
// a pass lost its node to another transaction (a heartbeat holds the node's
// row for a moment), and returns what they placed.
func schedule(tb testing.TB, store *postgres.Store, opts postgres.PassOpts, plan postgres.PlanFunc) int {
	tb.Helper()
	placed := 0
	for try := 0; ; try++ {
		res, err := store.SchedulePass(context.Background(), opts, plan)
		if err != nil {
			tb.Fatal(err)
		}
		placed += res.Placed
		if res.Rejected == 0 || try == 50 {
			return placed
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *agentRig) waitFor(d time.Duration, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *agentRig) state(id uuid.UUID) queue.State {
	t, err := r.store.GetTask(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return t.State
}

func TestAgent_ShipsEveryLineBeforeRecordingTheExit(t *testing.T) {
	t.Parallel()
	rt := &MemRuntime{RunFor: 300 * time.Millisecond, Output: func(spec ContainerSpec) []queue.LogLine {
		var out []queue.LogLine
		for i := 1; i <= 1200; i++ { // more than one batch
			out = append(out, queue.LogLine{Stream: queue.Stdout, Text: fmt.Sprintf("out %d", i)})
		}
		return append(out, queue.LogLine{Stream: queue.Stderr, Text: "err 1"}, queue.LogLine{Stream: queue.Stderr, Text: "err 2"})
	}}
	r := newAgentRig(t, rt, Options{LogLimits: queue.LogLimits{MaxLines: 1000, MaxBytes: 1 << 20}})
	tk := r.submit(queue.TaskSpec{Resources: queue.Resources{CPUMillis: 100}})
	r.waitFor(20*time.Second, "the task to end", func() bool { return r.state(tk.ID).Terminal() })

	// The exit is recorded only after the last line: reading right away sees all.
	page, err := r.store.ReadLogs(context.Background(), tk.ID, postgres.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if page.State != queue.Completed {
		t.Errorf("state %s, want completed", page.State)
	}
	if len(page.Lines) != 1000 || page.DroppedLines != 202 {
		t.Fatalf("kept %d lines, dropped %d; want 1000 and 202", len(page.Lines), page.DroppedLines)
	}
	if first, last := page.Lines[0], page.Lines[len(page.Lines)-1]; first.Text != "out 203" || last.Text != "err 2" || last.Stream != queue.Stderr {
		t.Errorf("first %+v last %+v", first, last)
	}
	for i := 1; i < len(page.Lines); i++ {
		if !page.Lines[i].At.After(page.Lines[i-1].At) {
			t.Fatalf("lines out of order at %d: %+v then %+v", i, page.Lines[i-1], page.Lines[i])
		}
	}
	if v := testutil.ToFloat64(r.agent.obs.metrics.logLines); v != 1202 {
		t.Errorf("shipped-lines counter = %v, want 1202", v)
	}
}

func TestAgent_RestartedAgentResumesShippingWithoutRepeats(t *testing.T) {
	t.Parallel()
	rt := &MemRuntime{Output: func(spec ContainerSpec) []queue.LogLine {
		return []queue.LogLine{{Text: "a"}, {Text: "b"}, {Text: "c"}}
	}}
	r := newAgentRig(t, rt, Options{})
	tk := r.submit(queue.TaskSpec{Resources: queue.Resources{CPUMillis: 100}})
	r.waitFor(20*time.Second, "three lines", func() bool {
		p, err := r.store.ReadLogs(context.Background(), tk.ID, postgres.LogQuery{})
		return err == nil && len(p.Lines) == 3
	})
	// A second agent of the same node adopts the container and ships it again
	// from the stored position: nothing is repeated.
	b := New(r.store, rt, Options{Name: r.agent.opts.Name, Capacity: r.agent.opts.Capacity})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	p, _ := r.store.ReadLogs(context.Background(), tk.ID, postgres.LogQuery{})
	var got []string
	for _, l := range p.Lines {
		got = append(got, l.Text)
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("lines after the second agent adopted the container: %v", got)
	}
}

func TestAgent_WritesNodeAndTaskStats(t *testing.T) {
	t.Parallel()
	rt := &MemRuntime{}
	r := newAgentRig(t, rt, Options{StatsInterval: 100 * time.Millisecond})
	tk := r.submit(queue.TaskSpec{Resources: queue.Resources{CPUMillis: 1000, MemoryBytes: 64 << 20}})
	ctx := context.Background()
	r.waitFor(20*time.Second, "task stats", func() bool {
		u, err := r.store.TaskUsage(ctx, tk.ID)
		return err == nil && u != nil
	})
	u, _ := r.store.TaskUsage(ctx, tk.ID)
	// MemRuntime: half the memory limit, half of the one core asked for.
	if u.MemoryUsedBytes != 32<<20 || u.MemoryLimitBytes != 64<<20 || u.CPUPercent < 40 || u.CPUPercent > 60 {
		t.Errorf("task usage = %+v, want 32 MiB of 64 MiB and about 50%% CPU", u)
	}
	r.waitFor(20*time.Second, "two node samples", func() bool {
		h, err := r.store.NodeStats(ctx, r.agent.Node().ID, 10)
		return err == nil && len(h) >= 2
	})
	n, err := r.store.GetNode(ctx, r.agent.Node().ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if n.Usage.At == nil || n.Usage.MemoryUsedBytes <= 0 || n.Usage.DiskUsedBytes <= 0 || n.Usage.CPUPercent < 0 || n.Usage.CPUPercent > 100 {
		t.Errorf("node usage = %+v", n.Usage)
	}
	h, _ := r.store.NodeStats(ctx, r.agent.Node().ID, 1)
	if h[0].MemoryTotalBytes <= h[0].MemoryUsedBytes || h[0].DiskTotalBytes <= h[0].DiskUsedBytes {
		t.Errorf("latest sample = %+v: totals must exceed used", h[0])
	}
}

func TestNodeSampler_ReadsProcFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("loadavg", "1.25 0.50 0.25 2/300 12345\n")
	write("meminfo", "MemTotal:       8000000 kB\nMemFree:        1000000 kB\nMemAvailable:   6000000 kB\nBuffers: 0 kB\nCached: 0 kB\n")
	write("stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 100 0 100 800 0 0 0 0 0 0\n")
	s := &nodeSampler{proc: dir, diskPath: dir}
	if _, ok, err := s.sample(); err != nil || ok {
		t.Fatalf("first sample: ok=%v err=%v; want a baseline only", ok, err)
	}
	// 1000 more ticks, 250 of them idle: 75% busy.
	write("stat", "cpu  500 0 450 1050 0 0 0 0 0 0\ncpu0 500 0 450 1050 0 0 0 0 0 0\n")
	u, ok, err := s.sample()
	if err != nil || !ok {
		t.Fatalf("second sample: ok=%v err=%v", ok, err)
	}
	if u.CPUPercent != 75 || u.Load1 != 1.25 || u.MemoryTotalBytes != 8000000*1024 || u.MemoryUsedBytes != 2000000*1024 {
		t.Errorf("usage = %+v", u)
	}
	if u.DiskTotalBytes <= 0 || u.DiskUsedBytes <= 0 || u.DiskUsedBytes > u.DiskTotalBytes {
		t.Errorf("disk = %d of %d", u.DiskUsedBytes, u.DiskTotalBytes)
	}
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

func TestCPUPercent(t *testing.T) {
	prev := ContainerStats{CPUNanos: 1e9, SystemNanos: 100e9, OnlineCPUs: 4}
	cur := ContainerStats{CPUNanos: 4e9, SystemNanos: 108e9, OnlineCPUs: 4}
	// 3 s of CPU over 8 s of all four cores (2 s of wall time): 1.5 cores.
	if p := cpuPercent(prev, cur); p != 150 {
		t.Errorf("cpuPercent = %v, want 150", p)
	}
	if p := cpuPercent(cur, prev); p != 0 {
		t.Errorf("counters going back: %v, want 0", p)
	}
}
