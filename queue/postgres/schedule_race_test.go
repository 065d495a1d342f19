package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/scheduler"
)

// overCapacitySQL finds nodes whose live tasks request more than they
// offer, or a host port held twice by live tasks of one node. One statement
// sees one snapshot, so at every moment all of it must come back empty.
const overCapacitySQL = `
WITH bad_nodes AS (
    SELECT n.name || ': live tasks request ' || r.cpu_millis || 'm/' || r.memory_bytes || 'B/' || r.disk_bytes
           || 'B of ' || n.cpu_millis || 'm/' || n.memory_bytes || 'B/' || n.disk_bytes || 'B' AS problem
    FROM nodes n JOIN node_reserved r ON r.node_id = n.id
    WHERE r.cpu_millis > n.cpu_millis OR r.memory_bytes > n.memory_bytes OR r.disk_bytes > n.disk_bytes
), bad_ports AS (
    SELECT t.node_id || ' port ' || (e->>'host_port') || ' held by ' || count(*) || ' live tasks' AS problem
    FROM tasks t, jsonb_array_elements(t.ports) e
    WHERE t.state IN ('scheduled', 'starting', 'running') AND coalesce((e->>'host_port')::int, 0) > 0
    GROUP BY t.node_id, e->>'host_port', e->>'protocol' HAVING count(*) > 1
)
SELECT problem FROM bad_nodes UNION ALL SELECT problem FROM bad_ports`

// TestSchedulePass_ThreeReplicas_NeverOvercommit races three scheduling
// replicas (each its own Store and pool, each with a different default
// strategy, tasks asking for all four) over 20 nodes while 2,000 tasks of
// mixed sizes, host ports and constraints arrive, and simulated agents claim,
// run and finish them so capacity is reused. Throughout, a checker asserts
// in SQL that no node is over capacity, that every node's reserved counters
// equal the sum of its live tasks' requests, and that no host port is held
// twice; at the end every task completed, was placed exactly once (one
// scheduled event, attempt 1), and nothing is left reserved.
//
// Passes that place round-robin tasks take turns on the shared cursor, so
// the race runs twice: with every strategy mixed in, and without round-robin
// tasks, where the three replicas' passes truly overlap and race for nodes.
func TestSchedulePass_ThreeReplicas_NeverOvercommit(t *testing.T) {
	t.Parallel()
	for name, strategies := range map[string][]string{
		"all strategies":      {"", "", "binpack", "spread", "epvm", "round-robin"},
		"without round-robin": {"", "binpack", "spread", "epvm"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raceReplicas(t, strategies)
		})
	}
}

func raceReplicas(t *testing.T, strategies []string) {
	const nodesN, tasksN = 20, 2000
	url := newURL(t)
	admin := openStore(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(3, 2000))

	var nodeIDs []uuid.UUID
	for i := 0; i < nodesN; i++ {
		n, err := admin.RegisterNode(ctx, queue.NodeRegistration{Name: fmt.Sprintf("sim-%02d", i),
			Labels: map[string]string{"zone": []string{"eu", "us"}[i%2]},
			Capacity: queue.Resources{CPUMillis: int64(2+r.IntN(7)) * 1000, MemoryBytes: int64(4+r.IntN(13)) << 30,
				DiskBytes: 50 << 30}})
		if err != nil {
			t.Fatal(err)
		}
		nodeIDs = append(nodeIDs, n.ID)
	}
	specs := make([]queue.TaskSpec, tasksN)
	cpus := []int64{100, 250, 500, 1000, 2000}
	mems := []int64{64 << 20, 256 << 20, 1 << 30, 2 << 30}
	for i := range specs {
		sp := queue.TaskSpec{Image: "sim", Name: fmt.Sprintf("race-%04d", i), RestartPolicy: queue.RestartNever,
			Resources: queue.Resources{CPUMillis: cpus[r.IntN(len(cpus))], MemoryBytes: mems[r.IntN(len(mems))], DiskBytes: 1 << 30},
			Strategy:  strategies[r.IntN(len(strategies))]}
		if i%10 == 0 {
			sp.Ports = []queue.Port{{ContainerPort: 80, HostPort: 8000 + r.IntN(5), Protocol: "tcp"}}
		}
		if i%7 == 0 {
			sp.Constraints = []queue.Constraint{{Key: "zone", Op: []string{"=", "!="}[r.IntN(2)], Value: "eu"}}
		}
		specs[i] = sp
	}

	var (
		done     atomic.Bool
		checks   atomic.Int64
		rejected atomic.Int64
		passes   atomic.Int64
	)
	g, gctx := errgroup.WithContext(ctx)

	// Tasks arrive while the replicas schedule: half up front, half trickling in.
	for _, sp := range specs[:tasksN/2] {
		if _, err := admin.CreateTask(ctx, uuid.Nil, sp); err != nil {
			t.Fatal(err)
		}
	}
	g.Go(func() error {
		for _, sp := range specs[tasksN/2:] {
			if _, err := admin.CreateTask(gctx, uuid.Nil, sp); err != nil {
				return err
			}
		}
		return nil
	})

	for i, def := range []string{"binpack", "spread", "epvm"} {
		st := openStore(t, url)
		sc, err := scheduler.New(def)
		if err != nil {
			t.Fatal(err)
		}
		opts := PassOpts{Batch: 100, By: fmt.Sprintf("replica-%d", i+1), Strategy: def}
		g.Go(func() error {
			for !done.Load() && gctx.Err() == nil {
				res, err := st.SchedulePass(gctx, opts, sc.Plan)
				if err != nil {
					return fmt.Errorf("%s: %w", opts.By, err)
				}
				passes.Add(1)
				rejected.Add(int64(res.Rejected))
				if res.Placed == 0 && res.Rejected == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			return nil
		})
	}

	// Simulated agents, one per node: heartbeat, claim, run for a moment, exit 0.
	agents := openStore(t, url)
	for _, id := range nodeIDs {
		g.Go(func() error {
			type run struct {
				lease queue.Lease
				until time.Time
			}
			var running []run
			var beat time.Time
			for !done.Load() && gctx.Err() == nil {
				if time.Since(beat) > time.Second {
					if _, err := agents.Beat(gctx, id, NodeHealth{}, time.Second); err != nil {
						return err
					}
					beat = time.Now()
				}
				claim, err := agents.Claim(gctx, id, 20)
				if err != nil {
					return err
				}
				for _, c := range claim.Tasks {
					if err := agents.MarkRunning(gctx, c.Lease(), "sim-"+c.ID.String()[:8]); err != nil {
						return err
					}
					running = append(running, run{c.Lease(), time.Now().Add(time.Duration(20+rand.IntN(80)) * time.Millisecond)})
				}
				kept := running[:0]
				for _, ru := range running {
					if time.Now().Before(ru.until) {
						kept = append(kept, ru)
						continue
					}
					if _, err := agents.RecordExit(gctx, ru.lease, ExitReport{Code: 0}); err != nil {
						return err
					}
				}
				running = kept
				time.Sleep(10 * time.Millisecond)
			}
			return nil
		})
	}

	// The checker, and the end condition.
	g.Go(func() error {
		for gctx.Err() == nil {
			rows, err := admin.pool.Query(gctx, overCapacitySQL)
			if err != nil {
				return err
			}
			var problems []string
			for rows.Next() {
				var p string
				if err := rows.Scan(&p); err != nil {
					return err
				}
				problems = append(problems, p)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if len(problems) > 0 {
				return fmt.Errorf("invariant broken: %v", problems)
			}
			checks.Add(1)
			var finished int
			if err := admin.pool.QueryRow(gctx, `SELECT count(*) FROM tasks WHERE state = 'completed'`).Scan(&finished); err != nil {
				return err
			}
			if finished == tasksN {
				done.Store(true)
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	})
	err := g.Wait()
	if err != nil || !done.Load() {
		// Say where things stand before failing.
		rows, qerr := admin.pool.Query(context.Background(), `SELECT state, reason, count(*) FROM tasks
GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10`)
		if qerr == nil {
			for rows.Next() {
				var st, why string
				var n int
				_ = rows.Scan(&st, &why, &n)
				t.Logf("%5d %s %s", n, st, why)
			}
			rows.Close()
		}
		t.Logf("%d passes, %d refused at commit, %d checks", passes.Load(), rejected.Load(), checks.Load())
		rows, qerr = admin.pool.Query(context.Background(), `SELECT pid, coalesce(state, ''), coalesce(wait_event_type, ''),
    coalesce(wait_event, ''), left(regexp_replace(query, '\s+', ' ', 'g'), 100)
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
		if qerr == nil {
			for rows.Next() {
				var pid int
				var st, wt, we, q string
				_ = rows.Scan(&pid, &st, &wt, &we, &q)
				t.Logf("pid %d %s %s/%s: %s", pid, st, wt, we, q)
			}
			rows.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Fatal("timed out before every task completed")
	}
	t.Logf("%d passes, %d placements refused at commit and retried, %d invariant checks", passes.Load(), rejected.Load(), checks.Load())
	if checks.Load() < 10 {
		t.Fatalf("only %d invariant checks ran during the race", checks.Load())
	}

	var wrong []string
	rows, err := admin.pool.Query(ctx, `
SELECT t.name || ': attempt ' || t.attempt || ', state ' || t.state || ', '
       || count(*) FILTER (WHERE e.to_state = 'scheduled') || ' placements, '
       || count(*) FILTER (WHERE e.to_state = 'running') || ' runs'
FROM tasks t JOIN task_events e ON e.task_id = t.id
GROUP BY t.id
HAVING t.attempt <> 1 OR t.state <> 'completed'
    OR count(*) FILTER (WHERE e.to_state = 'scheduled') <> 1
    OR count(*) FILTER (WHERE e.to_state = 'running') <> 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			t.Fatal(err)
		}
		wrong = append(wrong, w)
	}
	if len(wrong) > 0 {
		t.Fatalf("%d tasks not placed exactly once, e.g. %v", len(wrong), wrong[:min(5, len(wrong))])
	}
	var tasks, leftover, ports int
	if err := admin.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM tasks),
    (SELECT count(*) FROM node_reserved),
    (SELECT count(*) FROM node_ports)`).Scan(&tasks, &leftover, &ports); err != nil {
		t.Fatal(err)
	}
	if tasks != tasksN || leftover != 0 || ports != 0 {
		t.Fatalf("%d tasks stored (want %d), %d nodes still reserve something, %d host ports still held", tasks, tasksN, leftover, ports)
	}
	var misplaced int
	if err := admin.pool.QueryRow(ctx, `
SELECT count(*) FROM tasks t JOIN nodes n ON n.id = t.node_id, jsonb_array_elements(t.constraints) c
WHERE (c->>'op' = '=' AND n.labels->>(c->>'key') IS DISTINCT FROM c->>'value')
   OR (c->>'op' = '!=' AND n.labels->>(c->>'key') = c->>'value')`).Scan(&misplaced); err != nil {
		t.Fatal(err)
	}
	if misplaced != 0 {
		t.Fatalf("%d tasks ran on nodes their constraints exclude", misplaced)
	}
}
