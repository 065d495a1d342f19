package agent

import (
	"context"
	"fmt"
	"strconv"

	"github.com/docker/go-connections/nat"

	"github.com/orchd/orch/queue"
)

// PortReader is a Runtime that can tell which host ports the engine chose
// for a container's published ports. The agent records them (a task that
// publishes a port without a host port is reachable only there), for
// report_job_endpoints.
type PortReader interface {
	PublishedPorts(ctx context.Context, id string) ([]queue.Port, error)
}

var (
	_ PortReader = (*DockerRuntime)(nil)
	_ PortReader = (*MemRuntime)(nil)
)

// PublishedPorts returns the container's ports with the host port the
// engine bound each to (its first IPv4 binding).
func (d *DockerRuntime) PublishedPorts(ctx context.Context, id string) ([]queue.Port, error) {
	info, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("docker: inspect %.12s: %w", id, err)
	}
	if info.NetworkSettings == nil {
		return nil, nil
	}
	var out []queue.Port
	for port, bindings := range info.NetworkSettings.Ports {
		for _, b := range bindings {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil || hp == 0 || (b.HostIP != "" && b.HostIP != "0.0.0.0") {
				continue
			}
			out = append(out, queue.Port{ContainerPort: nat.Port(port).Int(), HostPort: hp, Protocol: nat.Port(port).Proto()})
			break
		}
	}
	return out, nil
}

// PublishedPorts returns the spec's ports, a port without a host port
// published at its own number: nothing listens in a MemRuntime container.
func (r *MemRuntime) PublishedPorts(ctx context.Context, id string) ([]queue.Port, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return nil, fmt.Errorf("memruntime: no such container %s", id)
	}
	out := make([]queue.Port, len(c.spec.Ports))
	for i, p := range c.spec.Ports {
		if p.HostPort == 0 {
			p.HostPort = p.ContainerPort
		}
		out[i] = p
	}
	return out, nil
}

// recordHostPorts records the host ports the engine chose for a task that
// publishes a port without one. It is best effort: a task whose ports
// could not be read is still running, only its endpoint lacks a port.
func (a *Agent) recordHostPorts(ctx context.Context, t *queue.Task, containerID string) {
	pr, ok := a.rt.(PortReader)
	if !ok {
		return
	}
	chosen := false
	for _, p := range t.Ports {
		chosen = chosen || p.HostPort == 0
	}
	if !chosen {
		return
	}
	ports, err := pr.PublishedPorts(ctx, containerID)
	if err != nil {
		a.log.Warn("reading a container's published ports", "task", t.ID, "err", err)
		return
	}
	lease := t.Lease()
	a.write(ctx, "recording host ports", func(ctx context.Context) error {
		return a.store.RecordHostPorts(ctx, lease, ports)
	})
}
