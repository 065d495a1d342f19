package postgres

import (
	"testing"
)

// The heartbeat's asynchronous commit must apply to its own transaction and
// to nothing after it on the same connection: every other write still waits
// for its flush.
func TestAsyncCommit_OnlyForItsOwnTransaction(t *testing.T) {
	s, ctx := newStore(t)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// Test servers run with synchronous_commit off (pgserver's Fast):
	// turn it on for this session, as on a durable server.
	if _, err := conn.Exec(ctx, `SET synchronous_commit = on`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `RESET synchronous_commit`) //nolint:errcheck
	var inside, after string
	if err := conn.QueryRow(ctx, `WITH `+asyncCommitCTE+` SELECT current_setting('synchronous_commit') FROM async_commit`).Scan(&inside); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if inside != "off" || after != "on" {
		t.Fatalf("synchronous_commit inside the statement %q, after it %q; want off, then on", inside, after)
	}
}
