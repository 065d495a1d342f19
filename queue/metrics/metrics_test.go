package metrics

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestRegistry_WritesTextThatParsesBack(t *testing.T) {
	r := NewRegistry()
	req := r.Counter("orch_test_requests_total", "Requests by route.\nSecond line with a \\ backslash.", "route", "code")
	req.With("/tasks/{id}", "200").Add(3)
	req.With(`we"ird\path`+"\n", "500").Inc()
	up := r.Counter("orch_test_plain_total", "No labels, shown at zero.")
	g := r.Gauge("orch_test_temperature", "A gauge.", "room")
	g.With("a").Set(-1.5)
	g.With("b").Add(2)
	r.GaugeFunc("orch_test_tasks", "Computed at scrape time.", []string{"state"}, func(context.Context) ([]Sample, error) {
		return []Sample{{Labels: []string{"running"}, Value: 7}, {Labels: []string{"pending"}, Value: 0}}, nil
	})
	h := r.Histogram("orch_test_pass_seconds", "A histogram.", []float64{0.1, 1, 0.01})
	var wg sync.WaitGroup
	for _, v := range []float64{0.005, 0.05, 0.5, 5, 0.1} {
		wg.Add(1)
		go func(v float64) { defer wg.Done(); h.Observe(v) }(v)
	}
	wg.Wait()

	var b strings.Builder
	if err := r.WriteText(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	fams, err := ParseText(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if f := fams["orch_test_requests_total"]; f == nil || f.Type != "counter" {
		t.Fatalf("requests family: %+v\n%s", f, text)
	}
	if v, ok := fams["orch_test_requests_total"].Value("orch_test_requests_total", map[string]string{"route": "/tasks/{id}", "code": "200"}); !ok || v != 3 {
		t.Errorf("requests{/tasks/{id},200} = %v, %v", v, ok)
	}
	if v, ok := fams["orch_test_requests_total"].Value("orch_test_requests_total", map[string]string{"route": `we"ird\path` + "\n"}); !ok || v != 1 {
		t.Errorf("escaped label did not come back: %v %v\n%s", v, ok, text)
	}
	if v, ok := fams["orch_test_plain_total"].Value("orch_test_plain_total", nil); !ok || v != 0 {
		t.Errorf("plain counter = %v, %v", v, ok)
	}
	_ = up
	if v, _ := fams["orch_test_temperature"].Value("orch_test_temperature", map[string]string{"room": "a"}); v != -1.5 {
		t.Errorf("gauge a = %v", v)
	}
	if v, _ := fams["orch_test_tasks"].Value("orch_test_tasks", map[string]string{"state": "running"}); v != 7 {
		t.Errorf("func gauge = %v", v)
	}
	hf := fams["orch_test_pass_seconds"]
	for le, want := range map[string]float64{"0.01": 1, "0.1": 3, "1": 4, "+Inf": 5} {
		if v, ok := hf.Value("orch_test_pass_seconds_bucket", map[string]string{"le": le}); !ok || v != want {
			t.Errorf("bucket le=%s = %v, %v; want %v\n%s", le, v, ok, want, text)
		}
	}
	if v, _ := hf.Value("orch_test_pass_seconds_sum", nil); v < 5.65 || v > 5.66 {
		t.Errorf("sum = %v", v)
	}
}

func TestRegistry_FailingFamilyIsLeftOutAndReported(t *testing.T) {
	r := NewRegistry()
	r.Counter("orch_a_total", "a")
	r.GaugeFunc("orch_db", "fails", nil, func(context.Context) ([]Sample, error) { return nil, errors.New("db down") })
	r.Counter("orch_b_total", "b")
	var b strings.Builder
	err := r.WriteText(context.Background(), &b)
	if err == nil || !strings.Contains(err.Error(), "db down") {
		t.Errorf("err = %v", err)
	}
	fams, perr := ParseText(strings.NewReader(b.String()))
	if perr != nil || fams["orch_a_total"] == nil || fams["orch_b_total"] == nil || fams["orch_db"] != nil {
		t.Errorf("families %v, %v\n%s", fams, perr, b.String())
	}
}

func TestParseText_RefusesMalformedInput(t *testing.T) {
	for name, text := range map[string]string{
		"sample without TYPE":         "orch_x 1\n",
		"bad value":                   "# TYPE orch_x gauge\norch_x one\n",
		"bad name":                    "# TYPE 1x gauge\n1x 1\n",
		"unquoted label":              "# TYPE orch_x gauge\norch_x{a=b} 1\n",
		"unterminated label":          "# TYPE orch_x gauge\norch_x{a=\"b} 1\n",
		"bad escape":                  "# TYPE orch_x gauge\norch_x{a=\"\\t\"} 1\n",
		"duplicate label":             "# TYPE orch_x gauge\norch_x{a=\"1\",a=\"2\"} 1\n",
		"negative counter":            "# TYPE orch_x_total counter\norch_x_total -1\n",
		"unknown type":                "# TYPE orch_x meter\n",
		"split family":                "# TYPE orch_x gauge\norch_x 1\n# TYPE orch_y gauge\norch_y 1\n# TYPE orch_x gauge\n",
		"sample of another family":    "# TYPE orch_x gauge\norch_y 1\n",
		"histogram without +Inf":      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
		"histogram not cumulative":    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
		"histogram count mismatch":    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
		"histogram bucket without le": "# TYPE h histogram\nh_bucket 2\nh_sum 1\nh_count 2\n",
		"extra fields":                "# TYPE orch_x gauge\norch_x 1 2 3\n",
	} {
		if _, err := ParseText(strings.NewReader(text)); err == nil {
			t.Errorf("%s: parsed without error:\n%s", name, text)
		}
	}
}
