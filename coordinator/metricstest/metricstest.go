// Package metricstest reads a /metrics answer as Prometheus would, for the
// tests of the coordinator, the agent and the CLI, which all serve one.
package metricstest

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Parse reads body as a scraper would, failing the test if it is not the
// Prometheus text format (from names where it came from), and returns its
// families and samples.
func Parse(t testing.TB, from, body string) (map[string]*dto.MetricFamily, model.Vector) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s does not parse: %v\n%s", from, err, body)
	}
	list := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		list = append(list, f)
	}
	samples, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, list...)
	if err != nil {
		t.Fatal(err)
	}
	return fams, samples
}

// Value is the value of the first sample called name (with _bucket, _sum
// or _count for a histogram's) whose labels include want.
func Value(samples model.Vector, name string, want map[string]string) (float64, bool) {
next:
	for _, s := range samples {
		if string(s.Metric[model.MetricNameLabel]) != name {
			continue
		}
		for k, v := range want {
			if string(s.Metric[model.LabelName(k)]) != v {
				continue next
			}
		}
		return float64(s.Value), true
	}
	return 0, false
}
