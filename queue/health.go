package queue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// HealthCheck is how a task's agent probes its container while it runs: an
// HTTP GET of Path on Port (healthy on a 2xx or 3xx answer), or a TCP
// connect to Port. The agent probes from its own side, at the container's
// address on the node, so nothing has to be published or reachable from
// outside. After FailureThreshold failed probes in a row the container is
// killed and the task is restarted or replaced according to its restart
// policy, like a container that failed.
type HealthCheck struct {
	Type HealthCheckType `json:"type"`
	// Port is the container port probed (not a host port).
	Port int `json:"port"`
	// Path is the HTTP path (type http only); "/" when empty.
	Path string `json:"path,omitempty"`
	// Interval is the time between probes; Timeout bounds one probe.
	Interval Duration `json:"interval,omitempty"`
	Timeout  Duration `json:"timeout,omitempty"`
	// FailureThreshold is how many failed probes in a row make the task unhealthy.
	FailureThreshold int `json:"failure_threshold,omitempty"`
	// StartPeriod is how long after the container starts failures do not
	// count, for programs that take a while to come up.
	StartPeriod Duration `json:"start_period,omitempty"`
}

// HealthCheckType names the kind of probe.
type HealthCheckType string

const (
	HealthHTTP HealthCheckType = "http"
	HealthTCP  HealthCheckType = "tcp"
)

// Health check defaults, as Kubernetes' probes have them (its period is 10 s,
// its timeout 1 s, its failure threshold 3).
const (
	DefaultHealthInterval  = 10 * time.Second
	DefaultHealthTimeout   = time.Second
	DefaultHealthThreshold = 3
	MinHealthInterval      = 100 * time.Millisecond
)

// TaskHealth is what the agent last learnt from a task's health check.
type TaskHealth string

const (
	// HealthNone: the task has no health check, or it is not running.
	HealthNone      TaskHealth = ""
	HealthStarting  TaskHealth = "starting" // running, no probe has passed yet
	HealthHealthy   TaskHealth = "healthy"
	HealthUnhealthy TaskHealth = "unhealthy"
)

// normalize fills the defaults of a health check.
func (h *HealthCheck) normalize() {
	if h == nil {
		return
	}
	if h.Type == HealthHTTP && h.Path == "" {
		h.Path = "/"
	}
	if h.Interval == 0 {
		h.Interval = Duration(DefaultHealthInterval)
	}
	if h.Timeout == 0 {
		h.Timeout = min(Duration(DefaultHealthTimeout), h.Interval)
	}
	if h.FailureThreshold == 0 {
		h.FailureThreshold = DefaultHealthThreshold
	}
}

// validate checks a normalized health check; nil is valid (no check).
func (h *HealthCheck) validate() error {
	if h == nil {
		return nil
	}
	switch h.Type {
	case HealthHTTP, HealthTCP:
	default:
		return Invalid("health_check.type", fmt.Sprintf("unknown health check type %q", h.Type), "use http or tcp")
	}
	if h.Port < 1 || h.Port > 65535 {
		return Invalid("health_check.port", fmt.Sprintf("port %d is outside 1..65535", h.Port), "give the container port the program listens on, e.g. 8080")
	}
	if h.Type == HealthHTTP {
		if h.Path[0] != '/' || len(h.Path) > 1024 {
			return Invalid("health_check.path", fmt.Sprintf("path %q must start with / and be at most 1024 bytes", h.Path), "e.g. /healthz")
		}
		for _, r := range h.Path {
			if r <= ' ' || r == 0x7f {
				return Invalid("health_check.path", fmt.Sprintf("path %q contains a space or control character", h.Path), "escape it, e.g. %20")
			}
		}
	} else if h.Path != "" {
		return Invalid("health_check.path", "a tcp health check has no path", "drop the path, or use type http")
	}
	if h.Interval < Duration(MinHealthInterval) || h.Interval > Duration(time.Hour) {
		return Invalid("health_check.interval", fmt.Sprintf("interval %s is outside 100ms..1h", h.Interval), "e.g. 10s")
	}
	if h.Timeout <= 0 || h.Timeout > h.Interval {
		return Invalid("health_check.timeout", fmt.Sprintf("timeout %s must be positive and at most the interval (%s)", h.Timeout, h.Interval), "e.g. 1s")
	}
	if h.FailureThreshold < 1 || h.FailureThreshold > 100 {
		return Invalid("health_check.failure_threshold", fmt.Sprintf("failure threshold %d is outside 1..100", h.FailureThreshold), "e.g. 3")
	}
	if h.StartPeriod < 0 || h.StartPeriod > Duration(time.Hour) {
		return Invalid("health_check.start_period", fmt.Sprintf("start period %s is outside 0..1h", h.StartPeriod), "e.g. 30s")
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as Go duration text
// ("1.5s", "300ms"); it also reads a bare number as seconds.
type Duration time.Duration

// String renders d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "1.5s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if ok, err := parseStringForm(b, d, func(s string) (Duration, error) {
		v, err := time.ParseDuration(s)
		if err != nil {
			return 0, Invalid("duration", fmt.Sprintf("%q is not a duration", s), "write e.g. 500ms, 2s or 1m")
		}
		return Duration(v), nil
	}); ok {
		return err
	}
	b = bytes.TrimSpace(b)
	secs, err := strconv.ParseFloat(string(b), 64)
	if err != nil || secs > float64(time.Duration(1<<62))/float64(time.Second) || secs < -float64(time.Duration(1<<62))/float64(time.Second) {
		return Invalid("duration", fmt.Sprintf("%s is not a duration", b), "write e.g. \"500ms\", \"2s\" or a number of seconds")
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// parseStringForm sets *v to what parse makes of b when b is a JSON string
// (ok): the form people write a duration, a quantity, a constraint or a
// mount in, beside the object or number form a program writes.
func parseStringForm[T any](b []byte, v *T, parse func(string) (T, error)) (ok bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '"' {
		return false, nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return true, err
	}
	parsed, err := parse(s)
	if err != nil {
		return true, err
	}
	*v = parsed
	return true, nil
}
