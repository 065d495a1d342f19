package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/orchd/orch/queue"
)

// healthFlags are `orch task create`'s health check flags.
type healthFlags struct {
	http, tcp         string
	interval, timeout time.Duration
	startPeriod       time.Duration
	failures          int
}

func (h *healthFlags) register(f *pflag.FlagSet) {
	f.StringVar(&h.http, "health-http", "", "health check: HTTP GET of PORT/PATH in the container, e.g. 8080/healthz (healthy on 2xx/3xx)")
	f.StringVar(&h.tcp, "health-tcp", "", "health check: TCP connect to PORT in the container")
	f.DurationVar(&h.interval, "health-interval", queue.DefaultHealthInterval, "time between health probes")
	f.DurationVar(&h.timeout, "health-timeout", queue.DefaultHealthTimeout, "time one probe may take")
	f.IntVar(&h.failures, "health-failures", queue.DefaultHealthThreshold, "failed probes in a row that make the task unhealthy (then it is restarted per its restart policy)")
	f.DurationVar(&h.startPeriod, "health-start-period", 0, "time after the start during which failed probes do not count")
}

// check builds the health check the flags describe, or nil when there is none.
func (h *healthFlags) check(cmd *cobra.Command) (*queue.HealthCheck, error) {
	changed := func(name string) bool { return cmd.Flags().Changed(name) }
	if h.http == "" && h.tcp == "" {
		for _, n := range []string{"health-interval", "health-timeout", "health-failures", "health-start-period"} {
			if changed(n) {
				return nil, queue.Invalid(n, "--"+n+" needs a health check", "add --health-http PORT/PATH or --health-tcp PORT")
			}
		}
		return nil, nil
	}
	if h.http != "" && h.tcp != "" {
		return nil, queue.Invalid("health-http", "give --health-http or --health-tcp, not both", "one check per task")
	}
	hc := &queue.HealthCheck{Interval: queue.Duration(h.interval), Timeout: queue.Duration(h.timeout),
		FailureThreshold: h.failures, StartPeriod: queue.Duration(h.startPeriod)}
	if !changed("health-timeout") && h.timeout > h.interval {
		hc.Timeout = hc.Interval
	}
	var err error
	if h.tcp != "" {
		hc.Type = queue.HealthTCP
		if hc.Port, err = strconv.Atoi(strings.TrimPrefix(h.tcp, ":")); err != nil {
			return nil, queue.Invalid("health-tcp", fmt.Sprintf("%q is not a port", h.tcp), "write --health-tcp 9000")
		}
		return hc, nil
	}
	hc.Type = queue.HealthHTTP
	port, path, _ := strings.Cut(strings.TrimPrefix(h.http, ":"), "/")
	if hc.Port, err = strconv.Atoi(port); err != nil {
		return nil, queue.Invalid("health-http", fmt.Sprintf("%q is not PORT/PATH", h.http), "write --health-http 8080/healthz")
	}
	hc.Path = "/" + path
	return hc, nil
}

// healthLines renders a task's health check and health for `orch task get`.
func healthLines(t queue.Task) [][2]string {
	hc := t.HealthCheck
	if hc == nil {
		return [][2]string{{"health check", "-"}}
	}
	what := fmt.Sprintf("tcp :%d", hc.Port)
	if hc.Type == queue.HealthHTTP {
		what = fmt.Sprintf("http :%d%s", hc.Port, hc.Path)
	}
	what += fmt.Sprintf(" every %s (timeout %s, %d failures", hc.Interval, hc.Timeout, hc.FailureThreshold)
	if hc.StartPeriod > 0 {
		what += fmt.Sprintf(", start period %s", hc.StartPeriod)
	}
	what += ")"
	health := orDash(string(t.Health))
	if t.HealthDetail != "" && t.Health != queue.HealthNone {
		health += " (" + t.HealthDetail + ")"
	}
	if t.HealthAt != nil && t.Health != queue.HealthNone {
		health += " since " + t.HealthAt.Format(time.RFC3339)
	}
	return [][2]string{{"health check", what}, {"health", health}}
}
