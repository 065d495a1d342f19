package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/queue"
)

// datacenterLabel sets the node's dc label from --datacenter; a --label
// dc=... must agree with it.
func datacenterLabel(dc string, labels map[string]string) error {
	if dc == "" {
		dc = queue.DefaultDatacenter
	}
	if v, ok := labels[queue.LabelDatacenter]; ok && v != dc {
		if dc != queue.DefaultDatacenter {
			return queue.Invalid("datacenter", fmt.Sprintf("--datacenter %s and --label %s=%s disagree", dc, queue.LabelDatacenter, v), "give the datacenter once, with --datacenter")
		}
		return nil // --label dc=... alone, from before --datacenter
	}
	labels[queue.LabelDatacenter] = dc
	return nil
}

// advertisedAddress is --address, or else the address of this machine on
// the way to the database: where the rest of the cluster (and what it
// serves) can reach it. No packet is sent to find it.
func advertisedAddress(cfg config.Agent) string {
	if cfg.Address != "" {
		return cfg.Address
	}
	host := "127.0.0.1"
	if u, err := url.Parse(cfg.DatabaseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	conn, err := net.Dial("udp", net.JoinHostPort(host, "5432"))
	if err != nil {
		return ""
	}
	defer conn.Close()
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return ""
}
