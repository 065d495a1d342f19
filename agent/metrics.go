package agent

import (
	"context"
	"net/http"

	"github.com/orchd/orch/queue/metrics"
)

// agentMetrics are what an agent counts about its own work. They live in
// the process; the cluster's state is in the database.
type agentMetrics struct {
	reg           *metrics.Registry
	claims        metrics.Counter
	starts        metrics.Counter
	startFailures metrics.Counter
	exits         *metrics.CounterVec // by the state the task ended in
	errors        *metrics.CounterVec // by operation
	logLines      metrics.Counter
	logDropped    metrics.Counter
	statsReports  metrics.Counter
}

func newAgentMetrics(a *Agent) *agentMetrics {
	r := metrics.NewRegistry()
	m := &agentMetrics{
		reg:           r,
		claims:        r.Counter("orch_agent_claims_total", "Tasks this agent claimed.").With(),
		starts:        r.Counter("orch_agent_container_starts_total", "Containers this agent started.").With(),
		startFailures: r.Counter("orch_agent_container_start_failures_total", "Containers that failed to start.").With(),
		exits:         r.Counter("orch_agent_container_exits_total", "Container exits recorded, by the state the task ended in.", "state"),
		errors:        r.Counter("orch_agent_errors_total", "Failed writes to the database, by operation.", "op"),
		logLines:      r.Counter("orch_agent_log_lines_shipped_total", "Log lines shipped to the database.").With(),
		logDropped:    r.Counter("orch_agent_log_lines_dropped_total", "Log lines the per-task cap dropped.").With(),
		statsReports:  r.Counter("orch_agent_stats_reports_total", "Node and task stats written to the database.").With(),
	}
	r.GaugeFunc("orch_agent_containers_watched", "Containers this agent is watching now.", nil,
		func(context.Context) ([]metrics.Sample, error) {
			a.mu.Lock()
			n := len(a.watched)
			a.mu.Unlock()
			return []metrics.Sample{{Value: float64(n)}}, nil
		})
	return m
}

// MetricsHandler serves the agent's metrics in the Prometheus text format.
// The agent opens no port by itself; `orch agent --metrics-listen` serves
// this handler.
func (a *Agent) MetricsHandler() http.Handler {
	return a.obs.metrics.reg.Handler(func(err error) { a.log.Warn("metrics", "err", err) })
}
