package queue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Mount gives a task's container a volume: a named volume that orch keeps
// on one node and that outlives the task, or a host path (a bind mount).
type Mount struct {
	// Source is a volume name, or an absolute host path for a bind mount.
	Source string `json:"source"`
	// Target is the absolute path inside the container.
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// HostPath reports whether the mount binds a host path rather than a named
// volume.
func (m Mount) HostPath() bool { return strings.HasPrefix(m.Source, "/") }

// String is the mount as --volume takes it: SOURCE:TARGET[:ro].
func (m Mount) String() string {
	s := m.Source + ":" + m.Target
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}

// ParseMount reads SOURCE:TARGET[:ro|:rw], as docker run -v writes it.
func ParseMount(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	var m Mount
	switch len(parts) {
	case 2:
	case 3:
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return Mount{}, Invalid("volume", fmt.Sprintf("%q: the mode must be ro or rw, not %q", s, parts[2]), "write NAME:/path or NAME:/path:ro")
		}
	default:
		return Mount{}, Invalid("volume", fmt.Sprintf("%q is not NAME:/path[:ro]", s), "write NAME:/path or NAME:/path:ro")
	}
	m.Source, m.Target = parts[0], parts[1]
	return m, nil
}

// MaxVolumes bounds the mounts of one task.
const MaxVolumes = 32

// validateVolumes checks the mounts: named volumes with names Docker takes,
// clean absolute paths, no target twice.
func (s *TaskSpec) validateVolumes() error {
	if len(s.Volumes) > MaxVolumes {
		return Invalid("volumes", fmt.Sprintf("%d volumes, the limit is %d", len(s.Volumes), MaxVolumes), "mount fewer volumes")
	}
	targets := map[string]bool{}
	for _, m := range s.Volumes {
		switch {
		case m.HostPath():
			if path.Clean(m.Source) != m.Source || strings.Contains(m.Source, ",") {
				return Invalid("volumes", fmt.Sprintf("host path %q is not a clean absolute path", m.Source), "write it without .., // or a trailing /")
			}
		case !nameRe.MatchString(m.Source) || len(m.Source) < 2 || len(m.Source) > MaxNameLen:
			return Invalid("volumes", fmt.Sprintf("volume name %q is not valid", m.Source),
				"use 2 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit (or an absolute host path)")
		}
		if !strings.HasPrefix(m.Target, "/") || path.Clean(m.Target) != m.Target || m.Target == "/" || strings.Contains(m.Target, ",") {
			return Invalid("volumes", fmt.Sprintf("mount point %q of volume %s is not a clean absolute path", m.Target, m.Source), "write e.g. data:/var/lib/data")
		}
		if targets[m.Target] {
			return Invalid("volumes", fmt.Sprintf("two volumes are mounted at %s", m.Target), "give each its own path")
		}
		targets[m.Target] = true
	}
	return nil
}

// NamedVolumes returns the names of the named volumes the spec mounts.
func (s *TaskSpec) NamedVolumes() []string {
	var out []string
	for _, m := range s.Volumes {
		if !m.HostPath() {
			out = append(out, m.Source)
		}
	}
	return out
}

// HostMounts reports whether the spec binds a host path, which needs an
// admin token and an agent started with --allow-host-mounts.
func (s *TaskSpec) HostMounts() bool {
	for _, m := range s.Volumes {
		if m.HostPath() {
			return true
		}
	}
	return false
}

// LabelAllowHostMounts is the node label an agent started with
// --allow-host-mounts sets; the scheduler places tasks with host mounts
// only there.
const LabelAllowHostMounts = "orch.allow-host-mounts"

// Volume is a named volume as orch records it: it lives on one node, where
// the first task that named it was placed, and every later task that names
// it is placed there too. It stays after its tasks end, until deleted.
type Volume struct {
	Name      string    `json:"name"`
	NodeID    uuid.UUID `json:"node_id"`
	NodeName  string    `json:"node_name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// DeleteRequestedAt is set while the node's agent is asked to remove it.
	DeleteRequestedAt *time.Time `json:"delete_requested_at,omitempty"`
	// Error is why the agent could not remove it yet, the last time it
	// tried (it tries again while the deletion is pending).
	Error string `json:"error,omitempty"`
	// Tasks counts the live tasks that mount it.
	Tasks int `json:"tasks"`
}

// VolumeHome is where a named volume lives, as a scheduling pass sees it.
type VolumeHome struct {
	NodeID   uuid.UUID
	Deleting bool
}

// HostMounts reports whether the template binds a host path.
func (t *TaskTemplate) HostMounts() bool {
	return (&TaskSpec{Volumes: t.Volumes}).HostMounts()
}

// UnmarshalJSON takes a mount as an object ({"source", "target",
// "read_only"}) or as the string --volume takes ("pgdata:/var/lib/data:ro"),
// as compose files write it.
func (m *Mount) UnmarshalJSON(b []byte) error {
	if ok, err := parseStringForm(b, m, ParseMount); ok {
		return err
	}
	type plain Mount
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return Invalid("volumes", fmt.Sprintf("a volume must be \"NAME:/path[:ro]\" or {\"source\", \"target\", \"read_only\"}: %v", err), "write e.g. \"data:/data\"")
	}
	*m = Mount(p)
	return nil
}
