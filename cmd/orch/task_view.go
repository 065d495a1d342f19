package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/orchd/orch/queue"
)

// portList renders a task's published ports as docker ps does:
// HOST->CONTAINER/PROTO, with the host port the engine chose once the agent
// has recorded it, and CONTAINER/PROTO while it is not known.
func portList(t queue.Task) string {
	out := make([]string, 0, len(t.Ports))
	for _, p := range t.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		host := p.HostPort
		if host == 0 {
			for _, h := range t.HostPorts {
				hp := h.Protocol
				if hp == "" {
					hp = "tcp"
				}
				if h.ContainerPort == p.ContainerPort && hp == proto {
					host = h.HostPort
				}
			}
		}
		s := fmt.Sprintf("%d/%s", p.ContainerPort, proto)
		if host != 0 {
			s = strconv.Itoa(host) + "->" + s
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// restartText renders a restart policy as Nomad does: the mode, then how
// many restarts it allows ("on-failure, unlimited"; "on-failure, 3").
func restartText(t queue.Task) string {
	if t.RestartPolicy == "" || t.RestartPolicy == queue.RestartNever {
		return string(queue.RestartNever)
	}
	if t.MaxRestarts == 0 {
		return string(t.RestartPolicy) + ", unlimited"
	}
	return fmt.Sprintf("%s, at most %d restarts (%d used)", t.RestartPolicy, t.MaxRestarts, t.Restarts)
}
