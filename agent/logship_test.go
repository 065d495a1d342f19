package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

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
