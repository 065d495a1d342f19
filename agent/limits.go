package agent

import (
	"strconv"

	"github.com/docker/docker/api/types/container"

	"github.com/orchd/orch/queue"
)

// Limits every task container gets besides its CPU and memory, so that one
// task cannot take its node down: a process-count limit (a fork bomb stops
// at it), no-new-privileges for every unprivileged container (setuid
// binaries inside gain nothing), and a bound on the engine's own log files
// of the container (the agent ships the output to the database; the
// engine's copy would otherwise grow until the disk is full).
const (
	// DefaultPidsLimit is the processes (threads included) a container may
	// have unless its task asks for fewer; podman's default.
	DefaultPidsLimit = 2048
	// DefaultContainerLogMaxBytes and DefaultContainerLogMaxFiles bound the
	// engine's log files of a container: 3 files of 10 MiB.
	DefaultContainerLogMaxBytes = 10 << 20
	DefaultContainerLogMaxFiles = 3
)

// pidsLimit is the process limit of t's container: the node's, or the
// task's own when it asks for fewer. A task may lower the node's limit,
// never raise it. 0 means no limit.
func (a *Agent) pidsLimit(t *queue.Task) int64 {
	node := a.opts.PidsLimit
	if t.PidsLimit > 0 && (node <= 0 || t.PidsLimit < node) {
		return t.PidsLimit
	}
	return node
}

// logConfig bounds the engine's log files of a container, for the drivers
// that keep them on the node's disk and take these options. Another driver
// (journald, syslog, fluentd...) is the operator's choice and bounded by its
// own settings: it is left alone.
func logConfig(driver string, spec ContainerSpec) container.LogConfig {
	if (driver != "json-file" && driver != "local") || spec.LogMaxBytes <= 0 {
		return container.LogConfig{}
	}
	cfg := map[string]string{"max-size": strconv.FormatInt(spec.LogMaxBytes, 10)}
	if spec.LogMaxFiles > 0 {
		cfg["max-file"] = strconv.Itoa(spec.LogMaxFiles)
	}
	return container.LogConfig{Type: driver, Config: cfg}
}
