package agent

import (
	"context"
	"testing"
	"time"
)

func TestOOMWatch_OOMKilled_SeesAnEventThatComesAfterTheExit(t *testing.T) {
	t.Parallel()
	w := newOOMMemory()
	go func() {
		time.Sleep(200 * time.Millisecond)
		w.record("other")
		w.record("c1")
	}()
	if !w.oomKilled(context.Background(), time.Now(), "short", "c1") {
		t.Error("an oom event 200ms after the exit was not seen")
	}
}

func TestOOMWatch_OOMKilled_NotForAnotherContainersEvent(t *testing.T) {
	t.Parallel()
	w := newOOMMemory()
	w.record("other")
	if w.oomKilled(context.Background(), time.Now().Add(-oomGrace), "c1") {
		t.Error("another container's oom event was taken for this one's")
	}
}

func TestOOMWatch_OOMKilled_NoWaitForAContainerOrchStopped(t *testing.T) {
	t.Parallel()
	w := newOOMMemory()
	w.stopRequested("c1")
	done := make(chan bool)
	go func() { done <- w.oomKilled(context.Background(), time.Now(), "c1") }()
	select {
	case got := <-done:
		if got {
			t.Error("a container orch stopped was reported OOM-killed")
		}
	case <-time.After(oomGrace / 2):
		t.Error("waited for an oom event of a container orch itself stopped")
	}
	w.forget("c1")
	if len(w.stopping) != 0 || len(w.killed) != 0 {
		t.Errorf("forget left %v %v", w.stopping, w.killed)
	}
}
