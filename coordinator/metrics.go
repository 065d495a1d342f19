package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// durationBuckets are the histograms' upper bounds in seconds, for
// operations that take between a millisecond and ten seconds. They are
// orch's own (finer at the low end than prometheus.DefBuckets) and must not
// change: dashboards compute quantiles from them.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// defaultScrapeTimeout bounds the database queries of a scrape whose
// scraper does not say how long it waits (Prometheus' default timeout).
const defaultScrapeTimeout = 10 * time.Second

// coordMetrics are this replica's counters, plus the cluster's task and
// node counts read from the database at every scrape (every replica shows
// the same counts; sum only the per-replica series across replicas).
type coordMetrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	reqDuration  *prometheus.HistogramVec
	passDuration prometheus.Histogram
	passes       *prometheus.CounterVec
	placed       prometheus.Counter
}

func newCoordMetrics() *coordMetrics {
	m := &coordMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orch_api_requests_total",
			Help: "API requests this replica answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		reqDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orch_api_request_duration_seconds",
			Help:    "Time to answer API requests, by route (log follows excluded).",
			Buckets: durationBuckets,
		}, []string{"route"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orch_schedule_pass_duration_seconds",
			Help:    "Duration of this replica's scheduling passes.",
			Buckets: durationBuckets,
		}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orch_schedule_passes_total",
			Help: "Scheduling passes this replica ran, by result (ok or error).",
		}, []string{"result"}),
		placed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orch_schedule_placed_total",
			Help: "Tasks this replica placed on nodes.",
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.reqDuration, m.passDuration, m.passes, m.placed,
	)
	return m
}

func (m *coordMetrics) observePass(d time.Duration, res postgres.PassResult, err error) {
	if err != nil {
		m.passes.WithLabelValues("error").Inc()
		return
	}
	m.passes.WithLabelValues("ok").Inc()
	m.passDuration.Observe(d.Seconds())
	m.placed.Add(float64(res.Placed))
}

// instrument counts every request by the route pattern that served it
// (never the raw path, whose ids would make a series per task).
func (c *Coordinator) instrument(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		route := "unmatched"
		if pattern != "" {
			route = pattern
			if _, path, ok := strings.Cut(pattern, " "); ok {
				route = path
			}
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, r)
		c.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
		if r.URL.Query().Get("follow") == "" {
			c.metrics.reqDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}
	})
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming answers (log follows) through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// MetricsHandler serves GET /metrics alone, without a token: what
// Options.MetricsListen serves. It shows counts and durations, never a
// task's name, spec or secret.
func (c *Coordinator) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", c.serveMetrics)
	return mux
}

// serveMetrics serves this replica's metrics and the cluster's counts, read
// from the database within this scrape's context and deadline. A count that
// cannot be read is logged and left out; the rest is served anyway.
func (c *Coordinator) serveMetrics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout(r))
	defer cancel()
	counts := prometheus.NewRegistry()
	counts.MustRegister(clusterCounts{ctx: ctx, store: c.store})
	promhttp.HandlerFor(prometheus.Gatherers{c.metrics.reg, counts}, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(c.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP(w, r)
}

// scrapeTimeout is how long the scraper waits, as Prometheus tells in a
// header, or defaultScrapeTimeout.
func scrapeTimeout(r *http.Request) time.Duration {
	s, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64)
	if err != nil || s <= 0 {
		return defaultScrapeTimeout
	}
	return time.Duration(s * float64(time.Second))
}

var (
	tasksDesc = prometheus.NewDesc("orch_tasks", "Tasks in each state, cluster-wide (from the database).", []string{"state"}, nil)
	nodesDesc = prometheus.NewDesc("orch_nodes",
		"Nodes in each state, cluster-wide (from the database); cordoned nodes are also counted by state.", []string{"state"}, nil)
)

// clusterCounts collects the figures that live in the database, for one
// scrape: Collect has no context of its own, so it takes the scrape's.
type clusterCounts struct {
	ctx   context.Context
	store *postgres.Store
}

// Describe implements prometheus.Collector.
func (cc clusterCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- tasksDesc
	ch <- nodesDesc
}

// Collect implements prometheus.Collector. Each family is read on its own,
// so that one failing query leaves only its family out.
func (cc clusterCounts) Collect(ch chan<- prometheus.Metric) {
	if counts, err := cc.store.TaskCounts(cc.ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(tasksDesc, fmt.Errorf("counting tasks: %w", err))
	} else {
		for _, st := range queue.AllStates {
			ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
		}
	}
	n, err := cc.store.CountNodes(cc.ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(nodesDesc, fmt.Errorf("counting nodes: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(n.Ready), string(queue.NodeReady))
	ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(n.Down), string(queue.NodeDown))
	ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(n.Cordoned), "cordoned")
}
