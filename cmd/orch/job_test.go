package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
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
