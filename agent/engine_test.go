package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func TestAgent_EngineDown_NodeUnhealthy_WorkGoesElsewhere_ThenBack(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rtA, rtB := &MemRuntime{}, &MemRuntime{}
	a := c.start("a", rtA)
	rtA.SetFailStart(errors.New("connection refused"))
	c.eventually(10*time.Second, "node a to be unhealthy", func() bool {
		n, err := c.store.GetNode(c.ctx, "a")
		return err == nil && n.State == queue.NodeUnhealthy && strings.Contains(n.HealthError, "connection refused")
	})
	c.start("b", rtB)
	tasks := make([]queue.Task, 5)
	for i := range tasks {
		tasks[i] = c.create(queue.TaskSpec{})
	}
	for _, tk := range tasks {
		if got := c.waitState(tk.ID, 10*time.Second, queue.Running); got.NodeName != "" && got.NodeName != "b" {
			t.Errorf("task on %s", got.NodeName)
		}
		if got := c.task(tk.ID); *got.NodeID == a.Node().ID {
			t.Errorf("task %s runs on the unhealthy node", tk.ID)
		}
	}
	rtA.SetFailStart(nil)
	c.eventually(10*time.Second, "node a to be ready again", func() bool {
		n, err := c.store.GetNode(c.ctx, "a")
		return err == nil && n.State == queue.NodeReady && n.HealthError == ""
	})
}

// dyingEngine answers pings until its first start, which fails and takes
// the engine down with it.
type dyingEngine struct {
	*MemRuntime
	dead atomic.Bool
}

func (d *dyingEngine) Start(ctx context.Context, spec ContainerSpec) (string, error) {
	d.dead.Store(true)
	return "", errors.New("engine refused the request")
}

func (d *dyingEngine) Ping(ctx context.Context) error {
	if d.dead.Load() {
		return errors.New("connection refused")
	}
	return nil
}

func TestAgent_EngineDownAtStart_TaskHandedBackNotFailed(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	a := c.start("a", &dyingEngine{MemRuntime: &MemRuntime{}})
	tk := c.create(queue.TaskSpec{RestartPolicy: queue.RestartNever})
	c.eventually(10*time.Second, "the task to be handed back", func() bool {
		for _, e := range events(t, c.store, tk.ID) {
			if e.From == queue.Starting && e.To == queue.Pending && strings.HasPrefix(e.Reason, "lost: docker engine on node a failed") {
				return true
			}
		}
		return false
	})
	if n, _ := c.store.GetNode(c.ctx, "a"); n.State != queue.NodeUnhealthy {
		t.Errorf("node a is %s after its engine failed, want unhealthy", n.State)
	}
	c.start("b", &MemRuntime{})
	got := c.waitState(tk.ID, 10*time.Second, queue.Running, queue.Failed)
	if got.State != queue.Running || *got.NodeID == a.Node().ID || got.Restarts != 0 {
		t.Errorf("after the engine failed: %s on %s, %d restarts; want running elsewhere, no restart", got.State, got.NodeName, got.Restarts)
	}
}

// pullFails is an engine that answers but cannot pull one image.
type pullFails struct{ *MemRuntime }

func (p pullFails) Start(ctx context.Context, spec ContainerSpec) (string, error) {
	if spec.Image == "registry.invalid/missing:1" {
		return "", fmt.Errorf("pull image %s: %w: no route to registry", spec.Image, ErrImage)
	}
	return p.MemRuntime.Start(ctx, spec)
}

func TestAgent_ImagePullsFailing_MakeTheNodeUnhealthy(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	c.start("a", pullFails{&MemRuntime{}})
	var ids []uuid.UUID
	for i := 0; i < 2; i++ { // ImageFailures is 2 in these tests
		ids = append(ids, c.create(queue.TaskSpec{Image: "registry.invalid/missing:1"}).ID)
	}
	for _, id := range ids {
		if got := c.waitState(id, 10*time.Second, queue.Failed); !strings.Contains(got.Error, "no route to registry") {
			t.Errorf("error %q", got.Error)
		}
	}
	c.eventually(10*time.Second, "node a to be unhealthy", func() bool {
		n, err := c.store.GetNode(c.ctx, "a")
		return err == nil && n.State == queue.NodeUnhealthy && strings.Contains(n.HealthError, "2 image pulls failed in a row")
	})
}
