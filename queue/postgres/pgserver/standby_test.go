package pgserver_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue/postgres/pgserver"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

// withConn runs f on a connection to url, given 30 s in all.
func withConn(t *testing.T, url string, f func(ctx context.Context, conn *pgx.Conn)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	f(ctx, conn)
}

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	withConn(t, url, func(ctx context.Context, conn *pgx.Conn) {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	})
}

func count(t *testing.T, url string) int {
	t.Helper()
	var n int
	withConn(t, url, func(ctx context.Context, conn *pgx.Conn) {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
	})
	return n
}

func TestStartStandby_ReplicatesSynchronously_PromoteAfterKill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := pgtest.ServerDir(t, "pgserver-test-")
	primary, err := pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(dir, "primary"), Fast: true,
		Settings: map[string]string{"synchronous_commit": "on"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	execSQL(t, primary.URL(), "CREATE TABLE t (i int)")

	standby, err := pgserver.StartStandby(ctx, primary, pgserver.StandbyOptions{DataDir: filepath.Join(dir, "standby"), Name: "s1", Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Stop(context.Background()) })
	if in, err := standby.InRecovery(ctx); err != nil || !in {
		t.Fatalf("standby in recovery: %v, %v", in, err)
	}
	// Synchronous from here on: a commit the primary acknowledges is on
	// the standby.
	execSQL(t, primary.URL(), "ALTER SYSTEM SET synchronous_standby_names = 's1'")
	execSQL(t, primary.URL(), "SELECT pg_reload_conf()")
	execSQL(t, primary.URL(), "INSERT INTO t SELECT generate_series(1, 100)")

	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if in, err := standby.InRecovery(ctx); err != nil || in {
		t.Fatalf("promoted standby in recovery: %v, %v", in, err)
	}
	execSQL(t, standby.URL(), "INSERT INTO t VALUES (101)")
	if n := count(t, standby.URL()); n != 101 {
		t.Errorf("rows on the promoted standby: %d, want 101", n)
	}
}
