package agent

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// healthServer answers /healthz with 200 while healthy is set, 503 otherwise.
func healthServer(t *testing.T) (port int, healthy *atomic.Bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	healthy = &atomic.Bool{}
	healthy.Store(true)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, healthy
}

func TestAgent_HealthCheck_HTTP_UnhealthyIsRestartedThenFails(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	port, healthy := healthServer(t)
	c.start("a", &MemRuntime{})
	tk := c.create(queue.TaskSpec{RestartPolicy: queue.RestartOnFailure, MaxRestarts: 1,
		HealthCheck: &queue.HealthCheck{Type: queue.HealthHTTP, Port: port, Path: "/healthz",
			Interval: queue.Duration(100 * time.Millisecond), Timeout: queue.Duration(100 * time.Millisecond), FailureThreshold: 2}})
	c.eventually(10*time.Second, "the task to be healthy", func() bool {
		got := c.task(tk.ID)
		return got.State == queue.Running && got.Health == queue.HealthHealthy && got.HealthAt != nil
	})
	healthy.Store(false)
	got := c.waitState(tk.ID, 20*time.Second, queue.Failed, queue.Completed)
	if got.State != queue.Failed || got.Restarts != 1 || got.Attempt != 2 || got.Health != queue.HealthUnhealthy {
		t.Fatalf("ended %s, health %q, after %d restarts, attempt %d; want failed, unhealthy, 1 restart, attempt 2",
			got.State, got.Health, got.Restarts, got.Attempt)
	}
	if !strings.Contains(got.Error, "HTTP 503") || !strings.Contains(got.HealthDetail, "2 probes in a row failed") {
		t.Errorf("error %q, health detail %q", got.Error, got.HealthDetail)
	}
	restarted := false
	for _, e := range events(t, c.store, tk.ID) {
		restarted = restarted || (e.From == queue.Running && e.To == queue.Pending && strings.HasPrefix(e.Reason, "health check failed: "))
	}
	if !restarted {
		t.Error("no event records the restart after the failed health check")
	}
}

func TestAgent_HealthCheck_TCP_StartPeriodForgivesEarlyFailures(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	// Nothing listens yet: the program "takes a while to come up".
	port := storetest.FreePort(t)
	c.start("a", &MemRuntime{})
	tk := c.create(queue.TaskSpec{RestartPolicy: queue.RestartNever,
		HealthCheck: &queue.HealthCheck{Type: queue.HealthTCP, Port: port, Interval: queue.Duration(100 * time.Millisecond),
			Timeout: queue.Duration(100 * time.Millisecond), FailureThreshold: 2, StartPeriod: queue.Duration(time.Second)}})
	c.waitState(tk.ID, 10*time.Second, queue.Running)
	time.Sleep(500 * time.Millisecond)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("port %d was taken meanwhile: %v", port, err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	c.eventually(10*time.Second, "the task to be healthy", func() bool {
		got := c.task(tk.ID)
		return got.Health == queue.HealthHealthy
	})
	if got := c.task(tk.ID); got.State != queue.Running || got.Attempt != 1 {
		t.Errorf("task %s attempt %d, want still running its first attempt", got.State, got.Attempt)
	}
}
