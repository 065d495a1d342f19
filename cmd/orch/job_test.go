package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/proc"
)

// This file holds the end-to-end tests of jobs: real coordinator and agent
// processes, real Docker, real PostgreSQL, driven through orch job.

// jobPool is a connection pool on the cluster's database for the tests'
// own looks (samplers run beside the test).
func jobPool(t *testing.T, c *cluster) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), c.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// writeSpec writes a job spec into the test's directory.
func writeSpec(t *testing.T, name, spec string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// healthyTasks counts a job's tasks that run, are not being stopped and
// pass their health check, and the distinct nodes they are on.
func healthyTasks(ctx context.Context, p *pgxpool.Pool, job string) (n, nodes int, err error) {
	err = p.QueryRow(ctx, `SELECT count(*), count(DISTINCT t.node_id) FROM tasks t JOIN jobs j ON j.id = t.job_id
WHERE j.name = $1 AND t.state = 'running' AND t.desired_state = 'running' AND t.health = 'healthy'`, job).Scan(&n, &nodes)
	return n, nodes, err
}

// sampler reads a job's healthy tasks every 100 ms until stopped and keeps
// the fewest it saw.
type sampler struct {
	min, samples atomic.Int64
	stop         chan struct{}
	done         sync.WaitGroup
}

func sample(t *testing.T, p *pgxpool.Pool, job string) *sampler {
	s := &sampler{stop: make(chan struct{})}
	s.min.Store(1 << 30)
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			n, _, err := healthyTasks(context.Background(), p, job)
			if err != nil {
				continue
			}
			s.samples.Add(1)
			if int64(n) < s.min.Load() {
				s.min.Store(int64(n))
			}
		}
	}()
	return s
}

func (s *sampler) finish() (min, samples int64) {
	close(s.stop)
	s.done.Wait()
	return s.min.Load(), s.samples.Load()
}

// prober sends HTTP requests to the healthy endpoints of a job, as a load
// balancer that reads report_job_endpoints would, and counts the answers.
type prober struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	done       sync.WaitGroup
	mu         sync.Mutex
	lastErr    string
}

func probe(p *pgxpool.Pool, job string) *prober {
	pr := &prober{stop: make(chan struct{})}
	hc := &http.Client{Timeout: time.Second}
	pr.done.Add(1)
	go func() {
		defer pr.done.Done()
		for i := 0; ; i++ {
			select {
			case <-pr.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			rows, err := p.Query(context.Background(), `SELECT node_address, host_port FROM report_job_endpoints
WHERE job = $1 AND healthy AND host_port IS NOT NULL ORDER BY task`, job)
			if err != nil {
				continue
			}
			var addrs []string
			for rows.Next() {
				var host string
				var port int
				if rows.Scan(&host, &port) == nil {
					addrs = append(addrs, fmt.Sprintf("http://%s:%d/", host, port))
				}
			}
			rows.Close()
			if len(addrs) == 0 {
				continue
			}
			resp, err := hc.Get(addrs[i%len(addrs)])
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					pr.ok.Add(1)
					continue
				}
				err = fmt.Errorf("HTTP %s", resp.Status)
			}
			pr.failed.Add(1)
			pr.mu.Lock()
			pr.lastErr = err.Error()
			pr.mu.Unlock()
		}
	}()
	return pr
}

func (pr *prober) finish() (ok, failed int64, last string) {
	close(pr.stop)
	pr.done.Wait()
	return pr.ok.Load(), pr.failed.Load(), pr.lastErr
}

// webSpec is a service of the workload image serving HTTP on 8080 with a
// health check on healthPort; extra lines go under update.
func webSpec(image string, count int, healthPort int, version string, update string) string {
	return fmt.Sprintf(`name: web
type: service
count: %d
strategy: spread
task:
  image: %s
  command: ["-serve", ":8080", "-sleep", "forever"]
  env: {VERSION: "%s"}
  resources: {cpu: 100m, memory: 32MiB}
  ports: [{container_port: 8080}]
  health_check: {type: http, port: %d, path: /healthz, interval: 300ms, timeout: 250ms, failure_threshold: 2, start_period: 3s}
update:
  max_parallel: 1
  min_healthy_time: 1s
  healthy_deadline: 20s
  progress_deadline: 40s
  auto_revert: true
%s`, count, image, version, healthPort, update)
}

// jobStatus reads a job through the CLI.
func jobStatus(t *testing.T, c *cluster, name string) coordinator.JobStatus {
	t.Helper()
	var st coordinator.JobStatus
	c.orchJSON(&st, "job", "status", name)
	return st
}

// liveVersions counts a job's live tasks by version.
func liveVersions(st coordinator.JobStatus) map[int]int {
	out := map[int]int{}
	for _, tk := range st.Tasks {
		if !tk.State.Terminal() && tk.DesiredState == queue.DesiredRunning && tk.JobVersion != nil {
			out[*tk.JobVersion]++
		}
	}
	return out
}

// waitHealthy waits until n tasks of the job are healthy and returns how
// long that took.
func waitHealthy(t *testing.T, c *cluster, p *pgxpool.Pool, job string, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.eventually(within, fmt.Sprintf("%d healthy tasks of %s", n, job), func() bool {
		got, _, err := healthyTasks(context.Background(), p, job)
		return err == nil && got == n
	})
	return time.Since(start)
}

// TestE2E_Job_Service is the life of a service through orch job: three
// healthy copies on distinct nodes, an agent killed, a rolling update under
// a sampler and an HTTP prober, a broken version reverted, a rolling
// restart, a canary promoted, and scaling.
func TestE2E_Job_Service(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 3})
	p := jobPool(t, c)
	ctx := context.Background()

	// v1: three healthy copies, one per node.
	v1 := writeSpec(t, "web-v1.yaml", webSpec(c.image, 3, 8080, "1", ""))
	if out, code := c.orch("job", "run", v1); code != 0 || !strings.Contains(out, "deployment successful") {
		t.Fatalf("job run v1: exit %d\n%s", code, out)
	}
	n, nodes, err := healthyTasks(ctx, p, "web")
	if err != nil || n != 3 || nodes != 3 {
		t.Fatalf("%d healthy tasks on %d nodes (%v), want 3 on 3", n, nodes, err)
	}

	// kill -9 of an agent: three healthy again within node-down timeout + 10 s.
	victim := c.nodes[0]
	c.stop(victim, true)
	gone := time.Now()
	c.eventually(15*time.Second, "the lost task to be replaced", func() bool {
		n, _, err := healthyTasks(ctx, p, "web")
		var lost int
		_ = p.QueryRow(ctx, `SELECT count(*) FROM tasks t JOIN nodes n ON n.id = t.node_id WHERE n.name = $1 AND t.state = 'running'`, victim).Scan(&lost)
		return err == nil && n == 3 && lost == 0
	})
	t.Logf("agent killed: 3 healthy tasks again after %s (node-down timeout 5s)", time.Since(gone).Round(100*time.Millisecond))
	c.startAgent(victim)
	c.eventually(20*time.Second, "the agent to be back", func() bool {
		nd, err := c.store.GetNode(ctx, victim)
		return err == nil && nd.State == queue.NodeReady
	})

	// v2: a rolling update, watched by a sampler and an HTTP prober.
	s, pr := sample(t, p, "web"), probe(p, "web")
	v2 := writeSpec(t, "web-v2.yaml", webSpec(c.image, 3, 8080, "2", ""))
	if out, code := c.orch("job", "run", v2); code != 0 {
		t.Fatalf("job run v2: exit %d\n%s", code, out)
	}
	min, samples := s.finish()
	ok, failed, last := pr.finish()
	t.Logf("rolling update v1 → v2: fewest healthy tasks seen %d in %d samples; %d HTTP answers, %d errors (last: %s)", min, samples, ok, failed, last)
	if min < 2 || samples < 10 {
		t.Fatalf("the sampler saw %d healthy tasks (in %d samples), want never fewer than count − max_parallel = 2", min, samples)
	}
	if ok == 0 {
		t.Fatal("the prober got no answer at all")
	}
	if st := jobStatus(t, c, "web"); liveVersions(st)[2] != 3 || len(liveVersions(st)) != 1 {
		t.Fatalf("after v2: live tasks by version %v, want 3 of version 2", liveVersions(st))
	}

	// v3 never passes its health check: the deployment fails, the job
	// reverts to v2's spec, and three healthy v2 tasks remain.
	v3 := writeSpec(t, "web-v3.yaml", webSpec(c.image, 3, 9090, "3", ""))
	start := time.Now()
	out, code := c.orch("job", "run", v3)
	if code == 0 || !strings.Contains(out, "failed") {
		t.Fatalf("job run of a version that never gets healthy: exit %d\n%s", code, out)
	}
	t.Logf("v3 failed after %s (progress_deadline 40s): %s", time.Since(start).Round(100*time.Millisecond), lastLine(out))
	c.eventually(30*time.Second, "the revert to settle", func() bool {
		st := jobStatus(t, c, "web")
		d := st.Deployment
		return st.Version == 4 && d != nil && d.Version == 4 && d.State == queue.DeploymentSuccessful && liveVersions(st)[4] == 3
	})
	waitHealthy(t, c, p, "web", 3, 20*time.Second)
	st := jobStatus(t, c, "web")
	if st.Spec.Task.Env["VERSION"] != "2" || st.StableVersion != 4 {
		t.Fatalf("after the revert: spec VERSION %q, stable %d; want v2's spec", st.Spec.Task.Env["VERSION"], st.StableVersion)
	}
	hist, _ := c.orch("job", "history", "web")
	for _, want := range []string{"version 4", "auto-reverted to version 2", "version 3", "version 2", "version 1", `task.health_check.port: 8080 → 9090`} {
		if !strings.Contains(hist, want) {
			t.Errorf("job history lacks %q:\n%s", want, hist)
		}
	}

	// A rolling restart replaces every task without dropping below
	// count − max_parallel.
	s = sample(t, p, "web")
	if out, code := c.orch("job", "restart", "web"); code != 0 {
		t.Fatalf("job restart: exit %d\n%s", code, out)
	}
	min, samples = s.finish()
	t.Logf("rolling restart: fewest healthy tasks seen %d in %d samples", min, samples)
	if min < 2 {
		t.Fatalf("the restart dropped to %d healthy tasks", min)
	}
	if st := jobStatus(t, c, "web"); liveVersions(st)[5] != 3 {
		t.Fatalf("after the restart: %v, want 3 tasks of version 5", liveVersions(st))
	}

	// A canary: one new task beside the old ones until promoted.
	v6 := writeSpec(t, "web-v6.yaml", webSpec(c.image, 3, 8080, "6", "  canary: 1\n"))
	if out, code := c.orch("job", "run", "--detach", v6); code != 0 {
		t.Fatalf("job run canary: exit %d\n%s", code, out)
	}
	c.eventually(30*time.Second, "the canary to be healthy", func() bool {
		st := jobStatus(t, c, "web")
		return st.Deployment != nil && st.Deployment.Version == 6 && st.Deployment.NeedsPromotion() && st.Deployment.Healthy == 1
	})
	if got := liveVersions(jobStatus(t, c, "web")); got[5] != 3 || got[6] != 1 {
		t.Fatalf("waiting for promotion: %v, want 3 old tasks and 1 canary", got)
	}
	if out, code := c.orch("job", "promote", "web"); code != 0 {
		t.Fatalf("job promote: exit %d\n%s", code, out)
	}
	c.eventually(60*time.Second, "the promoted deployment to succeed", func() bool {
		st := jobStatus(t, c, "web")
		return st.Deployment.Version == 6 && st.Deployment.State == queue.DeploymentSuccessful && liveVersions(st)[6] == 3 && len(liveVersions(st)) == 1
	})

	// Scale 3 → 6 → 2: in place, no restart.
	if out, code := c.orch("job", "scale", "web", "6"); code != 0 {
		t.Fatalf("job scale 6: exit %d\n%s", code, out)
	}
	waitHealthy(t, c, p, "web", 6, 30*time.Second)
	if out, code := c.orch("job", "scale", "web", "2"); code != 0 {
		t.Fatalf("job scale 2: exit %d\n%s", code, out)
	}
	c.eventually(30*time.Second, "two tasks left", func() bool {
		st := jobStatus(t, c, "web")
		return st.Counts[queue.Running] == 2 && liveVersions(st)[8] == 2
	})
	out, _ = c.orch("job", "status", "web")
	for _, want := range []string{"Type:        service", "Version:     8", "web.0", "web.1", "healthy", "Recent events:"} {
		if !strings.Contains(out, want) {
			t.Errorf("job status lacks %q:\n%s", want, out)
		}
	}
	var eps []queue.Endpoint
	c.orchJSON(&eps, "job", "endpoints", "web")
	if len(eps) != 2 || eps[0].HostPort == nil || eps[0].NodeAddress == "" || !eps[0].Healthy {
		t.Fatalf("endpoints %+v", eps)
	}
}

// runningByNode counts a job's running tasks that are not being stopped
// by the name of their node, and by version.
func runningByNode(ctx context.Context, p *pgxpool.Pool, job string) (byNode map[string]int, byVersion map[int]int, err error) {
	rows, err := p.Query(ctx, `SELECT n.name, t.job_version FROM tasks t JOIN jobs j ON j.id = t.job_id JOIN nodes n ON n.id = t.node_id
WHERE j.name = $1 AND t.state = 'running' AND t.desired_state = 'running'`, job)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	byNode, byVersion = map[string]int{}, map[int]int{}
	for rows.Next() {
		var node string
		var version int
		if err := rows.Scan(&node, &version); err != nil {
			return nil, nil, err
		}
		byNode[node]++
		byVersion[version]++
	}
	return byNode, byVersion, rows.Err()
}

// tasksOnNode counts every task of a job (whatever its state) that is on
// the node or pinned to it.
func tasksOnNode(ctx context.Context, p *pgxpool.Pool, job, node string, version int) (n int, err error) {
	err = p.QueryRow(ctx, `SELECT count(*) FROM tasks t JOIN jobs j ON j.id = t.job_id LEFT JOIN nodes n ON n.id = t.node_id
WHERE j.name = $1 AND t.job_version = $3 AND (n.name = $2 OR t.constraints @> jsonb_build_array(jsonb_build_object('key', 'node.name', 'value', $2::text)))`,
		job, node, version).Scan(&n)
	return n, err
}

// systemSpec is a system job of the workload image; version goes into its
// environment, so a new one replaces its tasks.
func systemSpec(image, name, version string) string {
	return fmt.Sprintf(`name: %s
type: system
task:
  image: %s
  command: ["-sleep", "forever"]
  env: {VERSION: "%s"}
  resources: {cpu: 50m, memory: 16MiB}
update: {max_parallel: 3, min_healthy_time: 0s, healthy_deadline: 30s, progress_deadline: 60s}
`, name, image, version)
}

// TestE2E_Job_System runs a system job: one task on each of 3 agents, one
// more on a 4th agent soon after it joins, and none on a cordoned node,
// neither for a new system job nor for a new version of the first.
func TestE2E_Job_System(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 3})
	p := jobPool(t, c)
	ctx := context.Background()
	oneEach := func(job string, nodes []string, version int) func() bool {
		return func() bool {
			byNode, byVersion, err := runningByNode(ctx, p, job)
			if err != nil || len(byNode) != len(nodes) || byVersion[version] != len(nodes) {
				return false
			}
			for _, n := range nodes {
				if byNode[n] != 1 {
					return false
				}
			}
			return true
		}
	}

	if out, code := c.orch("job", "run", "--detach", writeSpec(t, "sys.yaml", systemSpec(c.image, "sys", "1"))); code != 0 {
		t.Fatalf("job run: exit %d\n%s", code, out)
	}
	c.eventually(30*time.Second, "a task of sys running on each of the 3 nodes", oneEach("sys", c.nodes, 1))

	// A 4th agent joins: it runs a task of the job within 10 s of joining.
	fourth := fmt.Sprintf("e2e-%s-4", proc.RandomHex(4))
	started := time.Now()
	c.startAgent(fourth)
	c.waitNodes(4)
	joined := time.Now()
	c.eventually(10*time.Second, "a task of sys on the 4th node within 10 s of its joining", oneEach("sys", c.nodes, 1))
	t.Logf("4th agent: registered %s after its start, its task of sys running %s after it registered",
		joined.Sub(started).Round(10*time.Millisecond), time.Since(joined).Round(10*time.Millisecond))

	// Cordon one: a new system job leaves it out, and so does a new
	// version of sys (the task already there keeps running, as on any
	// cordoned node).
	cordoned, others := c.nodes[0], c.nodes[1:]
	if out, code := c.orch("node", "cordon", cordoned); code != 0 {
		t.Fatalf("node cordon: exit %d\n%s", code, out)
	}
	if out, code := c.orch("job", "run", "--detach", writeSpec(t, "sys2.yaml", systemSpec(c.image, "sys2", "1"))); code != 0 {
		t.Fatalf("job run sys2: exit %d\n%s", code, out)
	}
	if out, code := c.orch("job", "run", "--detach", writeSpec(t, "sys-v2.yaml", systemSpec(c.image, "sys", "2"))); code != 0 {
		t.Fatalf("job run sys v2: exit %d\n%s", code, out)
	}
	c.eventually(30*time.Second, "a task of sys2 on each node but the cordoned one", oneEach("sys2", others, 1))
	c.eventually(30*time.Second, "version 2 of sys on each node but the cordoned one", func() bool {
		byNode, byVersion, err := runningByNode(ctx, p, "sys")
		return err == nil && byVersion[2] == len(others) && byNode[cordoned] == 1
	})
	for _, check := range []struct {
		job     string
		version int
	}{{"sys2", 1}, {"sys", 2}} {
		if n, err := tasksOnNode(ctx, p, check.job, cordoned, check.version); err != nil || n != 0 {
			t.Errorf("%d tasks of %s version %d on the cordoned node (%v), want none", n, check.job, check.version, err)
		}
	}
	if n, err := tasksOnNode(ctx, p, "sys", cordoned, 1); err != nil || n != 1 {
		t.Errorf("%d tasks of sys version 1 on the cordoned node (%v), want its one task kept", n, err)
	}
}

// TestE2E_Job_Periodic runs a periodic job every 2 s for 30 s under three
// coordinator replicas: the launches, counted in SQL, are exactly the
// schedule's ticks, each once, none missed.
func TestE2E_Job_Periodic(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 3, agents: 1})
	p := jobPool(t, c)
	ctx := context.Background()
	spec := fmt.Sprintf(`name: tick
type: periodic
periodic: {cron: "@every 2s"}
task:
  image: %s
  command: ["-sleep", "100ms"]
  resources: {cpu: 50m, memory: 16MiB}
`, c.image)
	if out, code := c.orch("job", "run", writeSpec(t, "tick.yaml", spec)); code != 0 {
		t.Fatalf("job run: exit %d\n%s", code, out)
	}
	var id uuid.UUID
	var created time.Time
	if err := p.QueryRow(ctx, `SELECT id, created_at FROM jobs WHERE name = 'tick'`).Scan(&id, &created); err != nil {
		t.Fatal(err)
	}
	launches := func() int {
		var n int
		_ = p.QueryRow(ctx, `SELECT count(*) FROM periodic_launches WHERE job_id = $1`, id).Scan(&n)
		return n
	}
	c.eventually(60*time.Second, "15 launches (30 s)", func() bool { return launches() >= 15 })
	if out, code := c.orch("job", "stop", "tick"); code != 0 {
		t.Fatalf("job stop: exit %d\n%s", code, out)
	}
	var stopped time.Time
	if err := p.QueryRow(ctx, `SELECT now()`).Scan(&stopped); err != nil {
		t.Fatal(err)
	}

	// The ticks of the schedule from the job's creation to its stop.
	cfg := queue.PeriodicConfig{Cron: "@every 2s", TimeZone: "UTC"}
	sched, err := cfg.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	var want []time.Time
	for tk := sched.Next(created); !tk.After(stopped); tk = sched.Next(tk) {
		want = append(want, tk)
	}
	rows, err := p.Query(ctx, `SELECT l.tick, l.skipped, (SELECT count(*) FROM tasks t WHERE t.job_id = l.child_id)
FROM periodic_launches l WHERE l.job_id = $1 ORDER BY l.tick`, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []time.Time
	for rows.Next() {
		var tk time.Time
		var skipped string
		var tasks int
		if err := rows.Scan(&tk, &skipped, &tasks); err != nil {
			t.Fatal(err)
		}
		if skipped != "" || tasks != 1 {
			t.Errorf("launch of %s: skipped %q, %d tasks; want launched with 1 task", tk.Format(time.TimeOnly), skipped, tasks)
		}
		got = append(got, tk.UTC())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var instances int
	if err := p.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE parent_id = $1`, id).Scan(&instances); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d ticks from the job's creation to its stop, %d launches, %d instances", len(want), len(got), instances)
	// The tick just before the stop may not have been reached yet.
	if len(got) > len(want) || len(got) < len(want)-1 || instances != len(got) {
		t.Fatalf("launches at %v\nwant one at each of %v (%d instances)", got, want, instances)
	}
	for i := range got {
		if !got[i].Equal(want[i]) {
			t.Fatalf("launch %d at %s, want %s: launches %v", i, got[i].Format(time.TimeOnly), want[i].Format(time.TimeOnly), got)
		}
	}
}

// batchSpec is a batch job of count tasks that run the workload with args.
func batchSpec(image, name string, count int, args string, extra string) string {
	return fmt.Sprintf(`name: %s
type: batch
count: %d
task:
  image: %s
  command: [%s]
  resources: {cpu: 50m, memory: 16MiB}
%s`, name, count, image, args, extra)
}

// TestE2E_Job_Batch runs a batch job of 20 short tasks to complete, and
// one whose task fails past max_restarts 1 to failed.
func TestE2E_Job_Batch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 2})
	p := jobPool(t, c)
	ctx := context.Background()

	out, code := c.orch("job", "run", writeSpec(t, "crunch.yaml", batchSpec(c.image, "crunch", 20, `"-sleep", "300ms"`, "")))
	if code != 0 || !strings.Contains(out, "job crunch: complete at version 1") {
		t.Fatalf("job run of a batch of 20: exit %d\n%s", code, out)
	}
	var completed, indexes int
	var status string
	if err := p.QueryRow(ctx, `SELECT count(*) FILTER (WHERE t.state = 'completed'), count(DISTINCT t.job_index) FILTER (WHERE t.state = 'completed'),
    (SELECT status FROM jobs WHERE name = 'crunch')
FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE j.name = 'crunch'`).Scan(&completed, &indexes, &status); err != nil {
		t.Fatal(err)
	}
	if completed != 20 || indexes != 20 || status != "complete" {
		t.Fatalf("%d completed tasks at %d indexes, job %s; want 20 at 20, complete", completed, indexes, status)
	}

	out, code = c.orch("job", "run", writeSpec(t, "broken.yaml", batchSpec(c.image, "broken", 1, `"-exit", "1"`, "  max_restarts: 1\n")))
	if code != 1 || !strings.Contains(out, "job broken failed: broken.0 failed after 1 restart") {
		t.Fatalf("job run of a failing batch: exit %d, want 1\n%s", code, out)
	}
	t.Logf("failing batch: %s", lastLine(out))
	st := jobStatus(t, c, "broken")
	if st.Status != queue.JobFailed || len(st.Tasks) != 1 {
		t.Fatalf("job broken: %s with %d tasks, want failed with 1", st.Status, len(st.Tasks))
	}
	if tk := st.Tasks[0]; tk.State != queue.Failed || tk.Restarts != 1 || tk.ExitCode == nil || *tk.ExitCode != 1 {
		t.Fatalf("task of broken: %s after %d restarts (exit %v), want failed after 1 restart with exit code 1", tk.State, tk.Restarts, tk.ExitCode)
	}
}

// jobTables are the tables a job lives in; jobTasks the tasks of jobs and
// what hangs on them.
var (
	jobTables  = []string{"jobs", "job_versions", "deployments", "periodic_launches", "job_changes"}
	taskTables = []string{"tasks", "task_events", "task_secrets", "node_ports"}
)

// jobDigest is the row count of every table of jobs and tasks, and a
// checksum of the contents of the job tables and of the tasks of jobs.
func jobDigest(t *testing.T, p *pgxpool.Pool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range append(slices.Clone(jobTables), taskTables...) {
		var n int
		var sum string
		q := fmt.Sprintf(`SELECT count(*), COALESCE(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM %s x`, table)
		if slices.Contains(taskTables, table) {
			q = fmt.Sprintf(`SELECT count(*), '' FROM %s`, table)
			if table == "tasks" {
				q = `SELECT count(*), COALESCE(md5(string_agg(x::text, '|' ORDER BY x::text) FILTER (WHERE x.job_id IS NOT NULL)), '') FROM tasks x`
			}
		}
		if err := p.QueryRow(context.Background(), q).Scan(&n, &sum); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		out[table] = fmt.Sprintf("%d rows %s", n, sum)
	}
	return out
}

// TestE2E_Job_Plan plans a change of a running service, a new job and a
// job that fits nowhere: each plan says what would happen and where, and
// the database is the same afterwards, row for row.
func TestE2E_Job_Plan(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 2})
	p := jobPool(t, c)
	ctx := context.Background()
	svc := func(count int, version, memory string) string {
		return fmt.Sprintf(`name: api
count: %d
task:
  image: %s
  command: ["-sleep", "forever"]
  env: {VERSION: "%s"}
  resources: {cpu: 50m, memory: %s}
update: {min_healthy_time: 500ms, healthy_deadline: 20s, progress_deadline: 40s}
`, count, c.image, version, memory)
	}
	if out, code := c.orch("job", "run", writeSpec(t, "api.yaml", svc(2, "1", "16MiB"))); code != 0 {
		t.Fatalf("job run: exit %d\n%s", code, out)
	}
	// Settled: the job's last reconciliation saw every change of its tasks
	// and asks for no other soon (the fallback is 30 s away).
	c.eventually(30*time.Second, "the job to settle", func() bool {
		var settled bool
		err := p.QueryRow(ctx, `SELECT j.evaluated_seq = c.seq AND j.eval_at > now() + interval '20 seconds'
FROM jobs j JOIN job_changes c ON c.job_id = j.id WHERE j.name = 'api'`).Scan(&settled)
		return err == nil && settled
	})
	before := jobDigest(t, p)

	out, code := c.orch("job", "plan", writeSpec(t, "api-v2.yaml", svc(3, "2", "16MiB")))
	if code != 0 {
		t.Fatalf("job plan: exit %d\n%s", code, out)
	}
	for _, want := range []string{"job api (service): version 1 → 2", "count: 2 → 3", `task.env.VERSION: "1" → "2"`,
		"tasks: 1 to create, 0 to update in place, 2 to replace (destructive), 0 to stop, 0 unchanged", "api.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan of api v2 lacks %q:\n%s", want, out)
		}
	}
	var plan coordinator.JobPlanResult
	c.orchJSON(&plan, "job", "plan", writeSpec(t, "new.yaml", systemSpec(c.image, "agents", "1")))
	if plan.Exists || !plan.Changed || plan.Version != 1 || len(plan.Tasks) != 2 {
		t.Fatalf("plan of a new system job: %+v, want 2 new tasks of version 1", plan)
	}
	for _, pt := range plan.Tasks {
		if !slices.Contains(c.nodes, pt.Node) {
			t.Errorf("plan of a new system job: task %s to node %q, want one of %v", pt.Name, pt.Node, c.nodes)
		}
	}
	plan = coordinator.JobPlanResult{}
	c.orchJSON(&plan, "job", "plan", writeSpec(t, "huge.yaml", svc(1, "1", "64GiB")))
	if len(plan.Tasks) != 1 || plan.Tasks[0].Node != "" || !strings.Contains(plan.Tasks[0].Reason, "memory") {
		t.Fatalf("plan of a job too big for any node: %+v, want its task unplaced for lack of memory", plan.Tasks)
	}
	t.Logf("unplaced: %s", plan.Tasks[0].Reason)

	after := jobDigest(t, p)
	for table, b := range before {
		if after[table] != b {
			t.Errorf("%s changed under job plan: %s before, %s after", table, b, after[table])
		}
	}
}

// TestE2E_Job_BadSpecs submits bad specs through the API and the CLI: each
// is refused naming the field by its path (HTTP 400, exit 2), and nothing
// is stored.
func TestE2E_Job_BadSpecs(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 0})
	p := jobPool(t, c)
	base := func(extra string) string {
		return `{"name": "bad", "task": {"image": "` + c.image + `"}` + extra + `}`
	}
	cases := []struct {
		name, spec, field, err string
	}{
		{"unknown type", base(`, "type": "daemon"`), "type", `unknown job type "daemon"`},
		{"negative count", base(`, "count": -1`), "count", "count -1 is outside 0..10000"},
		{"invalid cron", base(`, "type": "periodic", "periodic": {"cron": "*/5 * *"}`), "periodic.cron", `"*/5 * *" is not a cron expression`},
		{"missing image", `{"name": "bad", "task": {"command": ["x"]}}`, "task.image", "image is required"},
		{"unknown field", base(`, "update": {"max_paralel": 2}`), "update.max_paralel", `unknown field "max_paralel"`},
		{"periodic without cron", base(`, "type": "periodic"`), "periodic.cron", "a periodic job needs a cron schedule"},
		{"max_parallel 0", base(`, "update": {"max_parallel": 0}`), "update.max_parallel", "max_parallel 0: at least one task must be replaced at a time"},
		{"bad memory unit", `{"name": "bad", "task": {"image": "x", "resources": {"memory": "5XB"}}}`, "task.resources.memory", `unknown unit "XB"`},
	}
	for _, tc := range cases {
		// The API.
		resp, err := http.Post(c.addrs[0]+"/jobs", "application/json", strings.NewReader(tc.spec))
		if err != nil {
			t.Fatal(err)
		}
		var body coordinator.ErrorBody
		derr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || derr != nil || body.Field != tc.field || !strings.Contains(body.Error, tc.err) {
			t.Errorf("%s: POST /jobs answered %d %+v (%v), want 400 naming %s: %s", tc.name, resp.StatusCode, body, derr, tc.field, tc.err)
		}
		// The CLI, from a YAML file of the same spec (JSON is YAML).
		stdout, stderr, code := orchSplit(t, c, "job", "run", writeSpec(t, "bad.yaml", tc.spec))
		if code != 2 || !strings.Contains(stderr, tc.field+": "+tc.err) || stdout != "" {
			t.Errorf("%s: orch job run exited %d, stderr %q, stdout %q; want exit 2 naming %s: %s", tc.name, code, stderr, stdout, tc.field, tc.err)
		}
		// And its dry run.
		if _, stderr, code := orchSplit(t, c, "job", "plan", writeSpec(t, "bad.yaml", tc.spec)); code != 2 || !strings.Contains(stderr, tc.field+": ") {
			t.Errorf("%s: orch job plan exited %d, stderr %q; want exit 2 naming %s", tc.name, code, stderr, tc.field)
		}
	}
	for _, table := range jobTables {
		var n int
		if err := p.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s holds %d rows (%v) after bad specs only, want none", table, n, err)
		}
	}
}
