package coordinator

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// A task created through the API is placed by the receiving coordinator at
// once, without a NOTIFY (which would wake every agent's connection) and
// without waiting for its periodic pass.
func TestAPI_CreatePlacesAtOnceWithoutNotify(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := newTestCoordinator(t, Options{Listen: "127.0.0.1:0", PassInterval: time.Hour})
	store := c.store
	storetest.Node(t, store, "n1", queue.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, DiskBytes: 100 << 30})
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	rctx, stop := context.WithCancel(ctx)
	go func() { done <- c.Run(rctx, func(a net.Addr) { ready <- a }) }()
	defer func() { stop(); <-done }()
	addr := <-ready

	heard := make(chan string, 16)
	lctx, unlisten := context.WithCancel(ctx)
	defer unlisten()
	go store.Listen(lctx, []string{postgres.ChannelPending}, func(n postgres.Notification) { heard <- n.Channel })
	<-heard // connected
	// The coordinator's first pass (at start) is over once the idle loop waits.
	time.Sleep(200 * time.Millisecond)

	resp, err := http.Post("http://"+addr.String()+"/tasks", "application/json", strings.NewReader(`{"image":"alpine","cpu":"100m"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created queue.Task
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("POST /tasks: %d, %v", resp.StatusCode, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := store.GetTask(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == queue.Scheduled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task still %s after 10 s: the API did not wake its scheduler (pass interval is an hour)", got.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case ch := <-heard:
		t.Errorf("the API's create notified %q: every listening agent's connection is woken by a NOTIFY", ch)
	case <-time.After(300 * time.Millisecond):
	}
}
