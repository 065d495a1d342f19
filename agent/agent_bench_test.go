package agent

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/agent/dockertest"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// plainRuntime hides a runtime's optional interfaces (LogReader,
// StatsReader): an agent over it ships no logs and measures no containers.
type plainRuntime struct{ Runtime }

// BenchmarkAgent_CreateToRunning measures create→running (the database's
// created_at to started_at) of two agents side by side over one database:
// one with log shipping and stats on ("observed"), one with them off
// ("plain"). Starts alternate between the two, so that the load of a
// shared machine falls on both alike, and the figure to read is the ratio
// of their medians. Shipping starts only after the running write, in its
// own goroutine, so the ratio should be 1. Run with e.g.
//
//	go test ./agent -run '^$' -bench CreateToRunning -benchtime 20x
func BenchmarkAgent_CreateToRunning(b *testing.B) {
	b.Run("mem", func(b *testing.B) {
		out := func(ContainerSpec) []queue.LogLine {
			lines := make([]queue.LogLine, 600)
			for i := range lines {
				lines[i] = queue.LogLine{Text: fmt.Sprintf("line %d", i)}
			}
			return lines
		}
		benchStart(b, &MemRuntime{Output: out}, "mem", nil)
	})
	b.Run("docker", func(b *testing.B) {
		dockertest.Require(b)
		img := dockertest.BuildWorkload(b)
		rt, err := NewDockerRuntime(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close()
		benchStart(b, rt, img, []string{"-logs", "500", "-stderr-logs", "100", "-sleep", "forever"})
	})
}

type benchAgent struct {
	agent *Agent
	lat   []time.Duration
}

func benchStart(b *testing.B, rt Runtime, image string, args []string) {
	ctx := context.Background()
	store := storetest.New(b)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	newAgent := func(name string, rt Runtime) *benchAgent {
		a := New(store, rt, Options{Name: name + "-" + uuid.NewString()[:8], PollInterval: time.Second,
			Capacity:      queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30},
			StatsInterval: time.Second, StopGrace: time.Second})
		if err := a.Register(actx); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = a.Run(actx) }()
		b.Cleanup(func() {
			cancel()
			<-done
			inner := rt
			if p, ok := rt.(plainRuntime); ok {
				inner = p.Runtime
			}
			if d, ok := inner.(*DockerRuntime); ok { // what a stop left behind, if anything
				_, _ = dockertest.CleanupContainers(ctx, d.cli, map[string]string{LabelNode: a.Node().ID.String()})
			}
		})
		return &benchAgent{agent: a}
	}
	observed := newAgent("observed", rt)
	plain := newAgent("plain", plainRuntime{rt})

	startOn := func(ba *benchAgent, i int) {
		// Named: unnamed tasks created within a minute share the container
		// name prefix (the UUIDv7's time bits); see ContainerName.
		spec := queue.TaskSpec{Name: fmt.Sprintf("bench-%d", i), Image: image, Command: args,
			Resources: queue.Resources{CPUMillis: 100, MemoryBytes: 32 << 20}}
		spec.Normalize()
		tk, err := store.CreateTask(ctx, uuid.Nil, spec)
		if err != nil {
			b.Fatal(err)
		}
		node := ba.agent.Node().ID
		schedule(b, store, postgres.PassOpts{Batch: 10, By: "bench"}, storetest.OnNode(node))
		var got queue.Task
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if got, err = store.GetTask(ctx, tk.ID); err != nil {
				b.Fatal(err)
			}
			if got.State == queue.Running || got.State.Terminal() || time.Now().After(deadline) {
				break
			}
		}
		if got.State != queue.Running || got.StartedAt == nil {
			b.Fatalf("task is %s: %s", got.State, got.Error)
		}
		ba.lat = append(ba.lat, got.StartedAt.Sub(got.CreatedAt))
		// Let shipping and stats run beside what follows, then stop the task
		// and wait, so that one start never overlaps another's teardown.
		time.Sleep(50 * time.Millisecond)
		if _, err := store.RequestStop(ctx, tk.ID, "bench"); err != nil {
			b.Fatal(err)
		}
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if t, err := store.GetTask(ctx, tk.ID); err != nil || t.State.Terminal() {
				break
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		first, second := plain, observed
		if i%2 == 1 {
			first, second = observed, plain
		}
		startOn(first, 2*i)
		startOn(second, 2*i+1)
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[len(s)/2].Microseconds()) / 1000
	}
	b.ReportMetric(median(plain.lat), "plain-ms-p50")
	b.ReportMetric(median(observed.lat), "observed-ms-p50")
	b.ReportMetric(median(observed.lat)/median(plain.lat), "observed/plain")
	b.ReportMetric(0, "ns/op") // the wall time per op includes teardown; not a figure to read
}
