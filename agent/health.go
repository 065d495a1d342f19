package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/orchd/orch/queue"
)

// Addresser is a Runtime that can tell at which address a container is
// reachable from its node, for health checks: the agent probes from its own
// side, so no port needs to be published and nothing needs to reach the node
// from outside.
type Addresser interface {
	Address(ctx context.Context, id string) (string, error)
}

// probe runs a task's health check until ctx ends (the container exited or
// the agent stops). It records the task's health when it changes — starting
// until a probe passes, then healthy or unhealthy — and after
// FailureThreshold failures in a row (not counting those within the start
// period) it stops the container: the watcher then records the attempt as
// failed, and the task's restart policy decides whether it is restarted.
func (a *Agent) probe(ctx context.Context, w *watch, hc queue.HealthCheck, started time.Time) {
	addrs, ok := a.rt.(Addresser)
	if !ok {
		a.log.Warn("this container runtime cannot be health-checked", "task", w.lease.TaskID)
		return
	}
	t := time.NewTicker(time.Duration(hc.Interval))
	defer t.Stop()
	var host string
	failures := 0
	reported := queue.HealthStarting // what the database says: set when the task started running
	report := func(h queue.TaskHealth, detail string) {
		if h == reported {
			return
		}
		err := a.store.SetTaskHealth(ctx, w.lease, h, detail)
		switch {
		case err == nil:
			reported = h
		case errors.Is(err, queue.ErrNotOwner):
			reported = h // the lease check deals with it
		case ctx.Err() == nil:
			a.log.Warn("recording health", "task", w.lease.TaskID, "err", err) // tried again at the next change or probe
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if host == "" {
			host, err = addrs.Address(ctx, w.containerID)
		}
		if err == nil {
			err = probeOnce(ctx, hc, host)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failures = 0
			report(queue.HealthHealthy, "ok")
			continue
		}
		if time.Since(started) < time.Duration(hc.StartPeriod) {
			continue
		}
		failures++
		if failures < hc.FailureThreshold {
			continue
		}
		why := fmt.Sprintf("%d probes in a row failed, the last: %v", failures, err)
		a.log.Warn("task is unhealthy; stopping its container", "task", w.lease.TaskID, "why", why)
		report(queue.HealthUnhealthy, why)
		a.mu.Lock()
		w.unhealthy = why
		a.mu.Unlock()
		a.stopContainer(ctx, w.containerID)
		return
	}
}

// probeOnce runs one probe of hc against the container at host.
func probeOnce(ctx context.Context, hc queue.HealthCheck, host string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(hc.Timeout))
	defer cancel()
	addr := net.JoinHostPort(host, strconv.Itoa(hc.Port))
	if hc.Type == queue.HealthTCP {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp %s: %w", addr, unwrapNet(err))
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+hc.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "orch-agent health check")
	resp, err := probeClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", hc.Path, unwrapNet(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: HTTP %d", hc.Path, resp.StatusCode)
	}
	return nil
}

// probeClient follows no redirects (a 3xx is healthy, as for Kubernetes'
// probes) and keeps no connections, so every probe tests a fresh one.
var probeClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

// unwrapNet shortens "dial tcp 172.17.0.3:80: connect: connection refused"
// to its last part, for a readable health detail.
func unwrapNet(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timed out")
	}
	return err
}
