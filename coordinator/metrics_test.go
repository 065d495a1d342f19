package coordinator

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/orchd/orch/coordinator/metricstest"
	"github.com/orchd/orch/queue"
)

// syncBuffer is a log destination that the server and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestMetrics_FailingCountIsLoggedAndTheRestServed(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	c := newTestCoordinator(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	// A scraper that waits a microsecond: the count queries miss their
	// deadline, as they would against a database that does not answer.
	req, err := http.NewRequest("GET", srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "0.000001")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	fams, _ := metricstest.Parse(t, "/metrics", string(body))
	for _, name := range []string{"orch_schedule_placed_total", "orch_schedule_pass_duration_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s beside the failed counts:\n%s", name, body)
		}
	}
	for _, name := range []string{"orch_tasks", "orch_nodes"} {
		if fams[name] != nil {
			t.Errorf("%s served although it could not be read:\n%s", name, body)
		}
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "counting tasks") || !strings.Contains(l, "counting nodes") {
		t.Errorf("the failure was not logged as a warning; log:\n%s", l)
	}
}

func TestMetrics_CoordinatorServesPrometheusText(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("m1")
	r.running(n, "one")
	if _, err := r.store.CreateTask(ctx, uuid.Nil, queue.TaskSpec{Image: "x", Resources: queue.Resources{CPUMillis: 64000}, RestartPolicy: queue.RestartNever}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	r.get("/tasks")
	r.get("/tasks/not-a-uuid")
	r.get("/nodes/nosuchnode")
	r.get("/no/such/route")

	code, body, hdr := r.get("/metrics")
	if code != 200 || expfmt.ResponseFormat(hdr).FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("GET /metrics: %d %q", code, hdr.Get("Content-Type"))
	}
	fams, samples := metricstest.Parse(t, "/metrics", body)
	want := []struct {
		sample string
		labels map[string]string
		value  float64
	}{
		{"orch_tasks", map[string]string{"state": "running"}, 1},
		{"orch_tasks", map[string]string{"state": "pending"}, 1},
		{"orch_tasks", map[string]string{"state": "failed"}, 0},
		{"orch_nodes", map[string]string{"state": "ready"}, 1},
		{"orch_nodes", map[string]string{"state": "down"}, 0},
		{"orch_schedule_pass_duration_seconds_count", nil, 2},
		{"orch_schedule_placed_total", nil, 1},
		{"orch_api_requests_total", map[string]string{"route": "/tasks", "method": "GET", "code": "200"}, 1},
		{"orch_api_requests_total", map[string]string{"route": "/tasks/{id}", "method": "GET", "code": "404"}, 1},
		{"orch_api_requests_total", map[string]string{"route": "/nodes/{node}", "code": "404"}, 1},
		{"orch_api_requests_total", map[string]string{"route": "unmatched", "code": "404"}, 1},
	}
	for _, w := range want {
		if v, ok := metricstest.Value(samples, w.sample, w.labels); !ok || v != w.value {
			t.Errorf("%s%v = %v (found %v), want %v\n%s", w.sample, w.labels, v, ok, w.value, body)
		}
	}
	if fams["orch_schedule_pass_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM || fams["orch_api_requests_total"].GetType() != dto.MetricType_COUNTER || fams["orch_tasks"].GetType() != dto.MetricType_GAUGE {
		t.Errorf("types: %s %s %s", fams["orch_schedule_pass_duration_seconds"].GetType(), fams["orch_api_requests_total"].GetType(), fams["orch_tasks"].GetType())
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if v, ok := metricstest.Value(samples, name, nil); !ok || v <= 0 {
			t.Errorf("%s = %v, %v; want the runtime and process collectors' figure", name, v, ok)
		}
	}
}

// TestCoordinator_Run_MetricsListenServesMetricsWithoutAToken: with
// MetricsListen a Prometheus without credentials scrapes the second
// address, which serves nothing else, while the API keeps asking for a token.
func TestCoordinator_Run_MetricsListenServesMetricsWithoutAToken(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, Options{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", Tokens: tokens(t)})
	api, stop := runCoordinator(t, c)
	metrics := c.MetricsAddr()
	if metrics == nil || metrics.String() == api.String() {
		t.Fatalf("metrics address %v (API on %v)", metrics, api)
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("http://" + metrics.String() + "/metrics")
	if code != 200 || !strings.Contains(body, `orch_nodes{state="ready"} 0`) || !strings.Contains(body, "orch_schedule_pass_duration_seconds_count") {
		t.Fatalf("GET /metrics on --metrics-listen without a token: %d\n%s", code, body)
	}
	for _, path := range []string{"/", "/tasks", "/nodes"} {
		if code, _ := get("http://" + metrics.String() + path); code != 404 {
			t.Errorf("GET %s on --metrics-listen: %d, want 404 (it serves metrics only)", path, code)
		}
	}
	if code, _ := get("http://" + api.String() + "/metrics"); code != 401 {
		t.Errorf("GET /metrics on the API without a token: %d, want 401", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
