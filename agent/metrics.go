package agent

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// agentMetrics are what an agent counts about its own work. They live in
// the process; the cluster's state is in the database.
type agentMetrics struct {
	reg           *prometheus.Registry
	claims        prometheus.Counter
	starts        prometheus.Counter
	startFailures prometheus.Counter
	exits         *prometheus.CounterVec // by the state the task ended in
	errors        *prometheus.CounterVec // by operation
	logLines      prometheus.Counter
	logDropped    prometheus.Counter
	statsReports  prometheus.Counter
	// steps counts the rounds that asked the database for work (Step),
	// by why: woken or poll; skipped counts the safety-net
	// rounds that asked nothing because the last heartbeat found nothing
	// new (digest.go). reconciles counts reconciles by kind: full (a read
	// of the node's tasks) or quick (the engine's list alone).
	steps      *prometheus.CounterVec
	skipped    prometheus.Counter
	reconciles *prometheus.CounterVec
}

func newAgentMetrics(a *Agent) *agentMetrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &agentMetrics{
		reg:           prometheus.NewRegistry(),
		claims:        counter("orch_agent_claims_total", "Tasks this agent claimed."),
		starts:        counter("orch_agent_container_starts_total", "Containers this agent started."),
		startFailures: counter("orch_agent_container_start_failures_total", "Containers that failed to start."),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orch_agent_container_exits_total",
			Help: "Container exits recorded, by the state the task ended in.",
		}, []string{"state"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orch_agent_errors_total",
			Help: "Failed writes to the database, by operation.",
		}, []string{"op"}),
		logLines:     counter("orch_agent_log_lines_shipped_total", "Log lines shipped to the database."),
		logDropped:   counter("orch_agent_log_lines_dropped_total", "Log lines the per-task cap dropped."),
		statsReports: counter("orch_agent_stats_reports_total", "Node and task stats written to the database."),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orch_agent_steps_total",
			Help: "Rounds that asked the database for work, by why: woken, or poll (the poll interval or the safety net ran out).",
		}, []string{"why"}),
		skipped: counter("orch_agent_steps_skipped_total",
			"Safety-net rounds that asked the database nothing: the last heartbeat found nothing new."),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orch_agent_reconciles_total",
			Help: "Reconciles of the engine's containers with the database, by kind: full (reads the node's tasks) or quick (the engine's list alone).",
		}, []string{"kind"}),
	}
	watched := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "orch_agent_containers_watched",
		Help: "Containers this agent is watching now.",
	}, func() float64 {
		a.mu.Lock()
		defer a.mu.Unlock()
		return float64(len(a.watched))
	})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.claims, m.starts, m.startFailures, m.exits, m.errors, m.logLines, m.logDropped, m.statsReports, watched,
		m.steps, m.skipped, m.reconciles,
	)
	return m
}

// MetricsHandler serves the agent's metrics in the Prometheus text format
// (or another the scraper asks for). The agent opens no port by itself;
// `orch agent --metrics-listen` serves this handler.
func (a *Agent) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(a.obs.metrics.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
