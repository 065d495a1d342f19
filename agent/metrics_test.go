package agent

import (
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/orchd/orch/coordinator/metricstest"
	"github.com/orchd/orch/queue"
)

func TestMetricsHandler_ServesTheAgentsCountersAndTheProcess(t *testing.T) {
	t.Parallel()
	r := newAgentRig(t, &MemRuntime{RunFor: 50 * time.Millisecond}, Options{})
	tk := r.submit(queue.TaskSpec{Resources: queue.Resources{CPUMillis: 100}})
	r.waitFor(20*time.Second, "the task to end", func() bool { return r.state(tk.ID).Terminal() })

	rec := httptest.NewRecorder()
	r.agent.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || expfmt.ResponseFormat(rec.Header()).FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("GET /metrics: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	fams, _ := metricstest.Parse(t, "/metrics", body)
	value := func(name string) float64 {
		f := fams[name]
		if f == nil || len(f.GetMetric()) == 0 {
			t.Errorf("no %s in\n%s", name, body)
			return 0
		}
		m := f.GetMetric()[0]
		return m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	for name, want := range map[string]float64{
		"orch_agent_claims_total":                   1,
		"orch_agent_container_starts_total":         1,
		"orch_agent_container_start_failures_total": 0,
		"orch_agent_container_exits_total":          1, // its only series: state="completed"
		"orch_agent_containers_watched":             0,
		"orch_agent_log_lines_dropped_total":        0,
	} {
		if v := value(name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if ms := fams["orch_agent_container_exits_total"].GetMetric(); len(ms) != 1 || len(ms[0].GetLabel()) != 1 ||
		ms[0].GetLabel()[0].GetName() != "state" || ms[0].GetLabel()[0].GetValue() != "completed" {
		t.Errorf("exits %v, want one series, state=completed", ms)
	}
	for _, name := range []string{"orch_agent_log_lines_shipped_total", "orch_agent_stats_reports_total"} {
		if fams[name].GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s is a %v, want a counter", name, fams[name].GetType())
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if v := value(name); v <= 0 {
			t.Errorf("%s = %v; want the runtime and process collectors' figure", name, v)
		}
	}
}
