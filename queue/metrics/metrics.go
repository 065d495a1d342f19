// Package metrics writes metrics in the Prometheus text exposition format
// (version 0.0.4): counters, gauges and histograms with labels, plus
// families computed at scrape time (for figures that live in the database).
//
// It is a few hundred lines instead of prometheus/client_golang, which
// would bring its protobuf and runtime collectors into every orch binary
// (megabytes of binary and resident memory, against the agent's RSS budget)
// for the handful of series orch exposes.
package metrics

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// DefBuckets are histogram buckets in seconds for operations that take
// between a millisecond and ten seconds.
var DefBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Registry holds metric families and writes them out.
type Registry struct {
	mu       sync.Mutex
	families []family
	names    map[string]bool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{names: map[string]bool{}} }

type family interface {
	write(ctx context.Context, w io.Writer) error
}

func (r *Registry) add(name string, labels []string, f family) {
	if !nameRE.MatchString(name) {
		panic(fmt.Sprintf("metrics: bad metric name %q", name)) // a programming error, caught by any test
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) || l == "le" || strings.HasPrefix(l, "__") {
			panic(fmt.Sprintf("metrics: bad label name %q on %s", l, name))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[name] {
		panic(fmt.Sprintf("metrics: %s registered twice", name))
	}
	r.names[name] = true
	r.families = append(r.families, f)
}

// WriteText writes every family in the text format. A family computed at
// scrape time whose function fails is left out; the first such error is
// returned after everything else has been written.
func (r *Registry) WriteText(ctx context.Context, w io.Writer) error {
	r.mu.Lock()
	fams := append([]family(nil), r.families...)
	r.mu.Unlock()
	var firstErr error
	for _, f := range fams {
		if err := f.write(ctx, w); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Handler serves the registry. onError, if set, hears about families that
// could not be computed (the rest are served anyway).
func (r *Registry) Handler(onError func(error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var b strings.Builder
		err := r.WriteText(req.Context(), &b)
		if err != nil && onError != nil {
			onError(err)
		}
		w.Header().Set("Content-Type", ContentType)
		_, _ = io.WriteString(w, b.String())
	})
}

// header writes a family's HELP and TYPE lines.
func header(w io.Writer, name, help, typ string) {
	help = strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(help)
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// labelPairs renders {k="v",...}; extra is appended as is (for le).
func labelPairs(names, values []string, extra string) string {
	if len(names) == 0 && extra == "" {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(values[i]))
		b.WriteByte('"')
	}
	if extra != "" {
		if len(names) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(extra)
	}
	b.WriteByte('}')
	return b.String()
}

func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// FormatValue renders a sample value as the format wants it.
func FormatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// key joins label values into a map key; \xff cannot occur in UTF-8 text.
func key(values []string) string { return strings.Join(values, "\xff") }

// vec is the label bookkeeping shared by counters and gauges.
type vec struct {
	name, help, typ string
	labels          []string
	mu              sync.Mutex
	series          map[string]*series
}

type series struct {
	values []string
	mu     sync.Mutex
	v      float64
}

func (v *vec) with(values []string) *series {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", v.name, len(v.labels), len(values)))
	}
	k := key(values)
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.series[k]
	if !ok {
		s = &series{values: append([]string(nil), values...)}
		v.series[k] = s
	}
	return s
}

func (v *vec) write(_ context.Context, w io.Writer) error {
	v.mu.Lock()
	list := make([]*series, 0, len(v.series))
	for _, s := range v.series {
		list = append(list, s)
	}
	v.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return key(list[i].values) < key(list[j].values) })
	header(w, v.name, v.help, v.typ)
	for _, s := range list {
		s.mu.Lock()
		val := s.v
		s.mu.Unlock()
		fmt.Fprintf(w, "%s%s %s\n", v.name, labelPairs(v.labels, s.values, ""), FormatValue(val))
	}
	return nil
}

// CounterVec is a counter family: a value per combination of labels that
// only goes up.
type CounterVec struct{ v *vec }

// Counter is one series of a CounterVec.
type Counter struct{ s *series }

// Counter registers a counter family. Its name should end in _total.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{v: &vec{name: name, help: help, typ: "counter", labels: labels, series: map[string]*series{}}}
	r.add(name, labels, c.v)
	if len(labels) == 0 {
		c.With() // a counter without labels is exposed from the start, at 0
	}
	return c
}

// With returns the series for these label values (in the order the labels
// were registered), creating it at 0.
func (c *CounterVec) With(values ...string) Counter { return Counter{s: c.v.with(values)} }

// Inc adds 1.
func (c Counter) Inc() { c.Add(1) }

// Add adds d, which must not be negative.
func (c Counter) Add(d float64) {
	if d < 0 {
		return // counters never go down
	}
	c.s.mu.Lock()
	c.s.v += d
	c.s.mu.Unlock()
}

// Value is the counter's current value.
func (c Counter) Value() float64 {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.v
}

// GaugeVec is a gauge family: a value per combination of labels that goes
// up and down.
type GaugeVec struct{ v *vec }

// Gauge is one series of a GaugeVec.
type Gauge struct{ s *series }

// Gauge registers a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) *GaugeVec {
	g := &GaugeVec{v: &vec{name: name, help: help, typ: "gauge", labels: labels, series: map[string]*series{}}}
	r.add(name, labels, g.v)
	return g
}

// With returns the series for these label values, creating it at 0.
func (g *GaugeVec) With(values ...string) Gauge { return Gauge{s: g.v.with(values)} }

// Set sets the gauge.
func (g Gauge) Set(v float64) {
	g.s.mu.Lock()
	g.s.v = v
	g.s.mu.Unlock()
}

// Add adds d (which may be negative).
func (g Gauge) Add(d float64) {
	g.s.mu.Lock()
	g.s.v += d
	g.s.mu.Unlock()
}

// Sample is one series of a family computed at scrape time.
type Sample struct {
	Labels []string // values, in the order of the family's label names
	Value  float64
}

type funcFamily struct {
	name, help, typ string
	labels          []string
	fn              func(ctx context.Context) ([]Sample, error)
}

// GaugeFunc registers a gauge family whose series fn computes at every
// scrape, such as counts read from the database.
func (r *Registry) GaugeFunc(name, help string, labels []string, fn func(ctx context.Context) ([]Sample, error)) {
	r.add(name, labels, &funcFamily{name: name, help: help, typ: "gauge", labels: labels, fn: fn})
}

func (f *funcFamily) write(ctx context.Context, w io.Writer) error {
	samples, err := f.fn(ctx)
	if err != nil {
		return fmt.Errorf("metrics: computing %s: %w", f.name, err)
	}
	sort.Slice(samples, func(i, j int) bool { return key(samples[i].Labels) < key(samples[j].Labels) })
	header(w, f.name, f.help, f.typ)
	for _, s := range samples {
		if len(s.Labels) != len(f.labels) {
			return fmt.Errorf("metrics: %s: sample has %d label values, want %d", f.name, len(s.Labels), len(f.labels))
		}
		fmt.Fprintf(w, "%s%s %s\n", f.name, labelPairs(f.labels, s.Labels, ""), FormatValue(s.Value))
	}
	return nil
}

// HistogramVec is a histogram family: per combination of labels, how many
// observations fell at or under each bucket's bound, their count and sum.
type HistogramVec struct {
	name, help string
	labels     []string
	buckets    []float64
	mu         sync.Mutex
	series     map[string]*histSeries
}

type histSeries struct {
	values []string
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

// Histogram is one series of a HistogramVec.
type Histogram struct{ s *histSeries }

// Histogram registers a histogram family with the given upper bounds
// (sorted, without +Inf, which is always added).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	b := append([]float64(nil), buckets...)
	sort.Float64s(b)
	h := &HistogramVec{name: name, help: help, labels: labels, buckets: b, series: map[string]*histSeries{}}
	r.add(name, labels, h)
	if len(labels) == 0 {
		h.With()
	}
	return h
}

// With returns the series for these label values.
func (h *HistogramVec) With(values ...string) Histogram {
	if len(values) != len(h.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", h.name, len(h.labels), len(values)))
	}
	k := key(values)
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.series[k]
	if !ok {
		s = &histSeries{values: append([]string(nil), values...), counts: make([]uint64, len(h.buckets)+1)}
		h.series[k] = s
	}
	return Histogram{s: s}
}

// observe counts v in the first bucket whose bound is at least v.
func (h *HistogramVec) observe(s *histSeries, v float64) {
	i := sort.SearchFloat64s(h.buckets, v) // first bound >= v
	s.mu.Lock()
	s.counts[i]++
	s.sum += v
	s.count++
	s.mu.Unlock()
}

// Observe records one observation in the series without labels.
func (h *HistogramVec) Observe(v float64) { h.observe(h.With().s, v) }

// ObserveWith records one observation in the series of these label values.
func (h *HistogramVec) ObserveWith(v float64, values ...string) { h.observe(h.With(values...).s, v) }

// Count is how many observations the series has.
func (h Histogram) Count() uint64 {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.s.count
}

func (h *HistogramVec) write(_ context.Context, w io.Writer) error {
	h.mu.Lock()
	list := make([]*histSeries, 0, len(h.series))
	for _, s := range h.series {
		list = append(list, s)
	}
	h.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return key(list[i].values) < key(list[j].values) })
	header(w, h.name, h.help, "histogram")
	for _, s := range list {
		s.mu.Lock()
		counts, sum, count := append([]uint64(nil), s.counts...), s.sum, s.count
		s.mu.Unlock()
		var cum uint64
		for i, b := range h.buckets {
			cum += counts[i]
			fmt.Fprintf(w, "%s_bucket%s %d\n", h.name, labelPairs(h.labels, s.values, `le="`+FormatValue(b)+`"`), cum)
		}
		fmt.Fprintf(w, "%s_bucket%s %d\n", h.name, labelPairs(h.labels, s.values, `le="+Inf"`), count)
		fmt.Fprintf(w, "%s_sum%s %s\n", h.name, labelPairs(h.labels, s.values, ""), FormatValue(sum))
		fmt.Fprintf(w, "%s_count%s %d\n", h.name, labelPairs(h.labels, s.values, ""), count)
	}
	return nil
}
