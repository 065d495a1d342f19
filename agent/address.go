package agent

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/network"
)

var (
	_ Addresser = (*DockerRuntime)(nil)
	_ Addresser = (*MemRuntime)(nil)
)

// Address returns the container's IP address on its Docker network (the
// default bridge, on which orch runs containers), which the node itself can
// reach.
func (d *DockerRuntime) Address(ctx context.Context, id string) (string, error) {
	info, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return "", fmt.Errorf("docker: inspect %.12s: %w", id, err)
	}
	if ns := info.NetworkSettings; ns != nil {
		// The default bridge first (what the deprecated, since removed,
		// NetworkSettings.IPAddress held), then any network the container
		// is on.
		if ep := ns.Networks[network.NetworkBridge]; ep != nil && ep.IPAddress != "" {
			return ep.IPAddress, nil
		}
		for _, ep := range ns.Networks {
			if ep != nil && ep.IPAddress != "" {
				return ep.IPAddress, nil
			}
		}
	}
	return "", fmt.Errorf("docker: container %.12s has no IP address (is it running?)", id)
}

// Address returns 127.0.0.1 for every container: nothing runs in a
// MemRuntime container, so a test that health-checks one listens on the
// loopback itself, on the port its check names.
func (r *MemRuntime) Address(ctx context.Context, id string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[id]; !ok {
		return "", fmt.Errorf("memruntime: no such container %s", id)
	}
	return "127.0.0.1", nil
}
