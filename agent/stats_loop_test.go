package agent

import (
	"context"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

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
