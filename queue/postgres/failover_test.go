package postgres

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/pgserver"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

// replicated is a primary with a synchronous hot standby, both private to
// the test, the schema migrated. Commits wait until the standby has applied
// them (remote_apply), so what the primary acknowledged is readable on the
// standby at once.
type replicated struct {
	primary, standby *pgserver.Server
}

func newReplicated(t *testing.T) *replicated {
	t.Helper()
	if testing.Short() {
		t.Skip("starts two PostgreSQL servers")
	}
	ctx := context.Background()
	dir := pgtest.ServerDir(t, "orch-failover-")
	r := &replicated{}
	var err error
	r.primary, err = pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(dir, "primary"), Fast: true,
		Settings: map[string]string{"synchronous_commit": "remote_apply"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.primary.Stop(context.Background()) })
	if _, err := MigrateUp(ctx, r.primary.URL()); err != nil {
		t.Fatal(err)
	}
	r.standby, err = pgserver.StartStandby(ctx, r.primary, pgserver.StandbyOptions{DataDir: filepath.Join(dir, "standby"), Name: "standby1", Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.standby.Stop(context.Background()) })
	// Synchronous only now: the standby made with pg_basebackup must not
	// inherit the setting, or once promoted it would wait for a standby of
	// its own.
	for _, q := range []string{`ALTER SYSTEM SET synchronous_standby_names = 'standby1'`, `SELECT pg_reload_conf()`} {
		if _, err := openStore(t, r.primary.URL()).pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// url is the multi-host URL orch processes are given: whichever of the two
// accepts writes.
func (r *replicated) url() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write",
		pgserver.User, r.primary.Port(), r.standby.Port())
}

// failover kills the primary (kill -9) and promotes the standby after
// pause.
func (r *replicated) failover(t *testing.T, pause time.Duration) {
	t.Helper()
	if err := r.primary.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause) // the failover manager's reaction time, on purpose
	if err := r.standby.Promote(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReportViews_ReadableOnHotStandby(t *testing.T) {
	t.Parallel()
	r := newReplicated(t)
	ctx := context.Background()
	s := openStore(t, r.primary.URL())
	n := mustNode(t, s, "n1", roomyNode)
	running(t, s, n.ID, queue.TaskSpec{Image: "alpine", RestartPolicy: queue.RestartNever})

	conn, err := pgx.Connect(ctx, r.standby.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.views
WHERE table_schema = current_schema() AND table_name LIKE 'report\_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	views, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(views) < 5 {
		t.Fatalf("report views on the standby: %v, %v", views, err)
	}
	for _, v := range views {
		rows, err := conn.Query(ctx, "SELECT * FROM "+pgx.Identifier{v}.Sanitize())
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
		}
		if err != nil {
			t.Errorf("reading %s on the hot standby: %v", v, err)
		}
	}
	var tasks int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(sum(tasks), 0) FROM report_task_counts WHERE state = 'running'`).Scan(&tasks); err != nil {
		t.Fatal(err)
	}
	if tasks != 1 {
		t.Errorf("running tasks in report_task_counts on the standby: %d, want 1", tasks)
	}
}

func TestStore_MarkSilentNodesDown_NotRightAfterPromotion(t *testing.T) {
	t.Parallel()
	notDownRightAfterPromotion(t, true)
}

// A primary that dies before any sweep recorded its epoch leaves the
// standby none: the promoted one must still not count from its own start.
func TestStore_MarkSilentNodesDown_NotRightAfterPromotion_WithNoSweepBefore(t *testing.T) {
	t.Parallel()
	notDownRightAfterPromotion(t, false)
}

// notDownRightAfterPromotion fails the test if a node silent since before a
// failover is declared down right after the promotion, or before its
// allowed silence has passed since; sweptBefore says whether a sweep ran on
// the primary before it died.
func notDownRightAfterPromotion(t *testing.T, sweptBefore bool) {
	r := newReplicated(t)
	ctx := context.Background()
	const timeout = time.Second
	s := openStore(t, r.primary.URL())
	// The standby has been up for longer than a node may be silent: its
	// start time says nothing about when it became the primary.
	allowed := 2*time.Second + timeout/2 // node_silence_allowed for the default 2 s beat
	for serverUptime(t, s) < 2*allowed {
		time.Sleep(100 * time.Millisecond)
	}
	// The coordinators' sweeps have seen the primary (as they do every
	// couple of seconds), or it died before their first.
	if sweptBefore {
		if down, err := s.MarkSilentNodesDown(ctx, timeout); err != nil || len(down) != 0 {
			t.Fatalf("a sweep on the primary: %v, %v", down, err)
		}
	}
	n := mustNode(t, s, "n1", roomyNode)
	exec(t, s, `UPDATE nodes SET last_heartbeat = now() - interval '1 minute' WHERE id = $1`, n.ID)

	r.failover(t, 0)
	promoted := time.Now()
	s2 := openStore(t, r.url())
	down, err := s2.MarkSilentNodesDown(ctx, timeout)
	if err != nil {
		t.Fatal(err)
	}
	if len(down) != 0 {
		t.Fatalf("right after the promotion, nodes declared down: %v", down)
	}
	// Once the agents had their timeout to reach the new primary, silence
	// counts again.
	for {
		down, err = s2.MarkSilentNodesDown(ctx, timeout)
		if err != nil {
			t.Fatal(err)
		}
		if len(down) == 1 {
			break
		}
		if time.Since(promoted) > time.Minute {
			t.Fatal("the silent node was never declared down after the promotion")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if took := time.Since(promoted); took < allowed {
		t.Errorf("declared down %v after the promotion, before the %v allowed", took, allowed)
	}
}

func TestStore_CreateTask_RidesOutFailover(t *testing.T) {
	t.Parallel()
	r := newReplicated(t)
	ctx := context.Background()
	s := openStore(t, r.url())

	var (
		mu       sync.Mutex
		accepted []uuid.UUID
		failed   []error
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				tk, err := s.CreateTask(ctx, uuid.Nil, queue.TaskSpec{Image: "alpine", RestartPolicy: queue.RestartNever})
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					accepted = append(accepted, tk.ID)
				}
				mu.Unlock()
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(accepted) }
	for count() < 50 {
		time.Sleep(10 * time.Millisecond)
	}
	before := count()
	r.failover(t, time.Second)
	for count() < before+50 {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	if len(failed) > 0 {
		t.Errorf("%d creates failed during the failover; the first: %v", len(failed), failed[0])
	}
	for _, id := range accepted {
		if _, err := s.GetTask(ctx, id); err != nil {
			t.Errorf("task %s, acknowledged, after the failover: %v", id, err)
		}
	}
	// A create repeated after a lost answer made no second task.
	if all, err := s.ListTasks(ctx, TaskFilter{}); err != nil || len(all) != len(accepted) {
		t.Errorf("tasks after the failover: %d (%v), want the %d acknowledged", len(all), err, len(accepted))
	}
	t.Logf("%d creates acknowledged, %d of them before the kill", len(accepted), before)
}
