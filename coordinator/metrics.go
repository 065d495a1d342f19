package coordinator

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/metrics"
	"github.com/orchd/orch/queue/postgres"
)

// coordMetrics are this replica's counters, plus the cluster's task and
// node counts read from the database at every scrape (every replica shows
// the same counts; sum only the per-replica series across replicas).
type coordMetrics struct {
	reg          *metrics.Registry
	requests     *metrics.CounterVec
	reqDuration  *metrics.HistogramVec
	passDuration *metrics.HistogramVec
	passes       *metrics.CounterVec
	placed       metrics.Counter
}

func newCoordMetrics(c *Coordinator) *coordMetrics {
	r := metrics.NewRegistry()
	m := &coordMetrics{
		reg:          r,
		requests:     r.Counter("orch_api_requests_total", "API requests this replica answered, by route, method and status code.", "route", "method", "code"),
		reqDuration:  r.Histogram("orch_api_request_duration_seconds", "Time to answer API requests, by route (log follows excluded).", metrics.DefBuckets, "route"),
		passDuration: r.Histogram("orch_schedule_pass_duration_seconds", "Duration of this replica's scheduling passes.", metrics.DefBuckets),
		passes:       r.Counter("orch_schedule_passes_total", "Scheduling passes this replica ran, by result (ok or error).", "result"),
		placed:       r.Counter("orch_schedule_placed_total", "Tasks this replica placed on nodes.").With(),
	}
	r.GaugeFunc("orch_tasks", "Tasks in each state, cluster-wide (from the database).", []string{"state"},
		func(ctx context.Context) ([]metrics.Sample, error) {
			counts, err := c.store.TaskCounts(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]metrics.Sample, 0, len(counts))
			for _, st := range queue.AllStates {
				out = append(out, metrics.Sample{Labels: []string{string(st)}, Value: float64(counts[st])})
			}
			return out, nil
		})
	r.GaugeFunc("orch_nodes", "Nodes in each state, cluster-wide (from the database); cordoned nodes are also counted by state.", []string{"state"},
		func(ctx context.Context) ([]metrics.Sample, error) {
			n, err := c.store.CountNodes(ctx)
			if err != nil {
				return nil, err
			}
			return []metrics.Sample{
				{Labels: []string{string(queue.NodeReady)}, Value: float64(n.Ready)},
				{Labels: []string{string(queue.NodeDown)}, Value: float64(n.Down)},
				{Labels: []string{"cordoned"}, Value: float64(n.Cordoned)},
			}, nil
		})
	return m
}

func (m *coordMetrics) observePass(d time.Duration, res postgres.PassResult, err error) {
	if err != nil {
		m.passes.With("error").Inc()
		return
	}
	m.passes.With("ok").Inc()
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
		c.metrics.requests.With(route, r.Method, strconv.Itoa(sw.status)).Inc()
		if r.URL.Query().Get("follow") == "" {
			c.metrics.reqDuration.ObserveWith(time.Since(start).Seconds(), route)
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

func (c *Coordinator) serveMetrics(w http.ResponseWriter, r *http.Request) {
	c.metrics.reg.Handler(func(err error) { c.log.Warn("metrics", "err", err) }).ServeHTTP(w, r)
}
