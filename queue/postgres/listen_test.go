package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

func TestStore_ListenStatus_ReportsDropAndReturnOfTheConnection(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woke := make(chan string, 16)
	up := make(chan bool, 16)
	go s.ListenStatus(ctx, []string{ChannelPending}, func(n Notification) { woke <- n.Channel }, func(ok bool) { up <- ok })
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case got := <-up:
			if got != want {
				t.Fatalf("%s: up(%v), want up(%v)", what, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no up(%v) within 10 s", what, want)
		}
	}
	expect("connecting", true)
	<-woke // the on-connect wake

	// The server drops the listener, as it would in a restart or a failover.
	tag, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("terminating the listener: %v (%d rows)", err, tag.RowsAffected())
	}
	expect("dropped", false)
	expect("reconnected", true)
	expectHeard(t, woke, "", 10*time.Second, "wake after reconnecting = %q, want the on-connect wake",
		"no wake after reconnecting: whatever was sent meanwhile would be missed")
	mustTask(t, s, queue.Resources{})
	expectHeard(t, woke, ChannelPending, 5*time.Second, "woke on %q", "no notification after reconnecting")
}

func TestStore_Listen_WakesOnNewTask(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woke := make(chan string, 16)
	go s.Listen(ctx, []string{ChannelPending}, func(n Notification) { woke <- n.Channel })
	if ch := <-woke; ch != "" {
		t.Fatalf("first wake = %q, want the on-connect wake", ch)
	}
	mustTask(t, s, queue.Resources{})
	expectHeard(t, woke, ChannelPending, 5*time.Second, "woke on %q", "no notification for a new task")
}

// expectHeard fails t unless the next channel heard on ch, within d, is
// want: wrong is the failure's format for another channel (%q), silence the
// failure when none comes.
func expectHeard(t *testing.T, ch <-chan string, want string, d time.Duration, wrong, silence string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf(wrong, got)
		}
	case <-time.After(d):
		t.Fatal(silence)
	}
}
