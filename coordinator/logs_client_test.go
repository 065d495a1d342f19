package coordinator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

func TestClient_FollowLogs_ResumesAfterABrokenStreamWithoutRepeats(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("f1")
	tk, lease := r.running(n, "resumed")
	line := func(i int) []queue.LogLine {
		return []queue.LogLine{{At: time.Now(), Stream: queue.Stdout, Text: fmt.Sprintf("l%d", i)}}
	}
	if _, err := r.store.AppendLogs(ctx, lease, line(1), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(r.srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	errc := make(chan error, 1)
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	go func() {
		errc <- client.FollowLogs(fctx, tk.ID.String(), LogOptions{}, func(f LogFrame) error {
			for _, l := range f.Lines {
				got <- l.Text
			}
			return nil
		})
	}()
	wait := func(want string) {
		t.Helper()
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %q within 20 s", want)
		}
	}
	wait("l1")
	r.srv.CloseClientConnections() // the coordinator goes away mid-follow
	if _, err := r.store.AppendLogs(ctx, lease, line(2), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	wait("l2")
	if _, err := r.store.AppendLogs(ctx, lease, line(3), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.RecordExit(ctx, lease, postgres.ExitReport{Code: 0}); err != nil {
		t.Fatal(err)
	}
	wait("l3")
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("FollowLogs: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("FollowLogs did not return after the task ended")
	}
	if len(got) != 0 {
		t.Errorf("extra lines: %d", len(got))
	}
	// The server counts a request when its handler returns, which for the
	// first, broken follow is when it next writes: wait for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n := testutil.ToFloat64(r.c.metrics.requests.WithLabelValues("/tasks/{id}/logs", "GET", "200"))
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follow was answered %v times; want a reconnect", n)
		}
	}
}
