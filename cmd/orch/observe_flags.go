package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/config"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// observabilityFlags are the agent's settings for stats, logs and metrics.
func observabilityFlags(cmd *cobra.Command, prefix string) {
	f := cmd.Flags()
	f.Duration(prefix+"stats-interval", 10*time.Second, "how often the agent writes node and task stats")
	f.Duration(prefix+"stats-retention", postgres.DefaultStatsRetention, "how long stats history is kept")
	f.Int64(prefix+"log-max-lines", queue.DefaultLogLimits.MaxLines, "log lines kept per task; older ones are dropped and counted")
	f.String(prefix+"log-max-bytes", queue.FormatBytes(queue.DefaultLogLimits.MaxBytes), "log bytes kept per task, e.g. 1MiB")
	f.String(prefix+"metrics-listen", "", "serve the agent's Prometheus metrics on this address, e.g. 127.0.0.1:9464 (default: no port is opened)")
}

// observabilityOptions copies the flags into the agent's options.
func observabilityOptions(cfg config.Agent, opts *agent.Options) error {
	opts.StatsInterval = cfg.StatsInterval
	opts.LogLimits.MaxLines = cfg.LogMaxLines
	if cfg.LogMaxLines < 0 {
		return queue.Invalid("log-max-lines", fmt.Sprintf("%d is negative", cfg.LogMaxLines), "give a number of lines like 10000")
	}
	if cfg.LogMaxBytes != "" {
		n, err := queue.ParseBytes(cfg.LogMaxBytes)
		if err != nil {
			return queue.Invalid("log-max-bytes", err.Error(), "give a size like 1MiB")
		}
		opts.LogLimits.MaxBytes = n
	}
	if cfg.StatsInterval < 0 {
		return queue.Invalid("stats-interval", "must not be negative", "give a duration like 10s")
	}
	return nil
}

// runAgentWithMetrics runs the agent and, only when addr is set, serves its
// metrics there; without it the agent opens no port at all.
func runAgentWithMetrics(ctx context.Context, a *agent.Agent, addr string) error {
	if addr == "" {
		return a.Run(ctx)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Warn("serving agent metrics", "err", err)
		}
	}()
	slog.Info("agent metrics listening", "addr", ln.Addr().String())
	defer func() {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	return a.Run(ctx)
}
