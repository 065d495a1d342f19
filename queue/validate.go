package queue

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/distribution/reference"
)

// Limits on what a spec may hold, so one request cannot bloat the database.
const (
	MaxNameLen     = 128
	MaxCommandLen  = 64 << 10 // bytes over all arguments
	MaxEnvVars     = 256
	MaxEnvBytes    = 64 << 10
	MaxSecrets     = 64
	MaxSecretBytes = 64 << 10
	MaxPorts       = 64
	MaxLabels      = 64
	MaxRestarts    = 1000
	MaxPidsLimit   = 1 << 22 // the kernel's own ceiling (pid_max)
)

var (
	nameRe     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	envKeyRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelKeyRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,62}$`)
)

// scanVars looks through environment variables (a task's env or its
// secrets) for a key that is no valid name and one whose value holds a NUL
// byte ("" for none), and counts the bytes of keys and values.
func scanVars(vars map[string]string) (badName, withNUL string, size int) {
	for k, v := range vars {
		if !envKeyRe.MatchString(k) {
			badName = k
		}
		if strings.ContainsRune(v, 0) {
			withNUL = k
		}
		size += len(k) + len(v)
	}
	return badName, withNUL, size
}

// validateSecrets checks the secrets' names and sizes. Its messages name a
// secret by its key, never by its value.
func (s *TaskSpec) validateSecrets() error {
	if len(s.Secrets) > MaxSecrets {
		return Invalid("secrets", fmt.Sprintf("%d secrets, the limit is %d", len(s.Secrets), MaxSecrets), "mount larger secret material from a volume")
	}
	badName, withNUL, n := scanVars(s.Secrets)
	if badName != "" {
		return Invalid("secrets", fmt.Sprintf("secret name %q is not a valid environment variable name", badName), "use letters, digits and '_', not starting with a digit")
	}
	for k := range s.Secrets {
		if _, dup := s.Env[k]; dup {
			return Invalid("secrets", fmt.Sprintf("%s is both in env and in secrets", k), "give it once, as a secret")
		}
	}
	if withNUL != "" {
		return Invalid("secrets", fmt.Sprintf("the value of secret %s contains a NUL byte", withNUL), "remove the NUL byte")
	}
	if n > MaxSecretBytes {
		return Invalid("secrets", fmt.Sprintf("secrets are %d bytes, the limit is %d", n, MaxSecretBytes), "mount larger secret material from a volume")
	}
	return nil
}

// Normalize fills defaults a user may leave out. It never rejects anything.
func (s *TaskSpec) Normalize() {
	s.Image = strings.TrimSpace(s.Image)
	s.Name = strings.TrimSpace(s.Name)
	s.Strategy = strings.ToLower(strings.TrimSpace(s.Strategy))
	if s.RestartPolicy == "" {
		s.RestartPolicy = RestartNever
	}
	for i := range s.Ports {
		if s.Ports[i].Protocol == "" {
			s.Ports[i].Protocol = "tcp"
		}
		s.Ports[i].Protocol = strings.ToLower(s.Ports[i].Protocol)
	}
	s.HealthCheck.normalize()
}

// Validate checks a normalized spec and returns a *FieldError for the first
// bad field. The API and the CLI both call it, so they refuse the same things
// with the same words.
func (s *TaskSpec) Validate() error {
	if s.Image == "" {
		return Invalid("image", "image is required", "give a container image, e.g. --image alpine:3.20")
	}
	if _, err := reference.ParseNormalizedNamed(s.Image); err != nil {
		return Invalid("image", fmt.Sprintf("%q is not a valid image reference: %v", s.Image, err),
			"use name[:tag][@digest], lower-case, e.g. registry.example.com/team/app:1.2")
	}
	if s.Name != "" {
		if len(s.Name) > MaxNameLen {
			return Invalid("name", fmt.Sprintf("name is %d bytes long, the limit is %d", len(s.Name), MaxNameLen), "use a shorter name")
		}
		if !nameRe.MatchString(s.Name) {
			return Invalid("name", fmt.Sprintf("name %q has characters outside [a-zA-Z0-9_.-] or does not start with a letter or digit", s.Name),
				"use letters, digits, '_', '.', '-'")
		}
	}
	r := s.Resources
	switch {
	case r.CPUMillis < 0:
		return Invalid("cpu", "CPU must not be negative", "give cores like 0.5 or millicores like 500m")
	case r.CPUMillis > MaxCPUMillis:
		return Invalid("cpu", fmt.Sprintf("CPU %s cores is more than any node offers (limit %s)", FormatCPU(r.CPUMillis), FormatCPU(MaxCPUMillis)), "request fewer cores")
	case r.MemoryBytes < 0:
		return Invalid("memory", "memory must not be negative", "give a size like 512MiB or 2G")
	case r.MemoryBytes > MaxMemoryBytes:
		return Invalid("memory", fmt.Sprintf("memory %s is more than any node offers (limit %s)", FormatBytes(r.MemoryBytes), FormatBytes(MaxMemoryBytes)), "request less memory")
	case r.MemoryBytes > 0 && r.MemoryBytes < 6<<20:
		return Invalid("memory", fmt.Sprintf("memory %s is below Docker's minimum of 6MiB", FormatBytes(r.MemoryBytes)), "request at least 6MiB, or 0 for no limit")
	case r.DiskBytes < 0:
		return Invalid("disk", "disk must not be negative", "give a size like 1GiB")
	case r.DiskBytes > MaxDiskBytes:
		return Invalid("disk", fmt.Sprintf("disk %s is more than any node offers", FormatBytes(r.DiskBytes)), "request less disk")
	}
	n := 0
	for _, a := range s.Command {
		n += len(a)
		if strings.ContainsRune(a, 0) {
			return Invalid("command", "command arguments must not contain NUL bytes", "remove the NUL byte")
		}
	}
	if n > MaxCommandLen {
		return Invalid("command", fmt.Sprintf("command is %d bytes, the limit is %d", n, MaxCommandLen), "pass large inputs through a file or the image")
	}
	if len(s.Env) > MaxEnvVars {
		return Invalid("env", fmt.Sprintf("%d environment variables, the limit is %d", len(s.Env), MaxEnvVars), "bake configuration into the image")
	}
	badName, withNUL, n := scanVars(s.Env)
	if badName != "" {
		return Invalid("env", fmt.Sprintf("environment variable name %q is not valid", badName), "use letters, digits and '_', not starting with a digit")
	}
	if withNUL != "" {
		return Invalid("env", fmt.Sprintf("value of %s contains a NUL byte", withNUL), "remove the NUL byte")
	}
	if n > MaxEnvBytes {
		return Invalid("env", fmt.Sprintf("environment is %d bytes, the limit is %d", n, MaxEnvBytes), "bake configuration into the image")
	}
	if err := s.validateVolumes(); err != nil {
		return err
	}
	if err := s.validateSecrets(); err != nil {
		return err
	}
	switch s.RestartPolicy {
	case RestartNever, RestartOnFailure, RestartAlways:
	default:
		return Invalid("restart_policy", fmt.Sprintf("unknown restart policy %q", s.RestartPolicy), "use never, on-failure or always")
	}
	if s.MaxRestarts < 0 || s.MaxRestarts > MaxRestarts {
		return Invalid("max_restarts", fmt.Sprintf("max_restarts %d is outside 0..%d", s.MaxRestarts, MaxRestarts), "give a count between 0 and 1000")
	}
	if len(s.Ports) > MaxPorts {
		return Invalid("ports", fmt.Sprintf("%d ports, the limit is %d", len(s.Ports), MaxPorts), "publish fewer ports")
	}
	seen := map[string]bool{}
	for _, p := range s.Ports {
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return Invalid("ports", fmt.Sprintf("container port %d is outside 1..65535", p.ContainerPort), "give a port like 8080 or 8080:80")
		}
		if p.HostPort < 0 || p.HostPort > 65535 {
			return Invalid("ports", fmt.Sprintf("host port %d is outside 1..65535", p.HostPort), "give a port like 8080:80, or omit the host port")
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return Invalid("ports", fmt.Sprintf("protocol %q is not tcp or udp", p.Protocol), "use tcp or udp")
		}
		if p.HostPort != 0 {
			k := fmt.Sprintf("%d/%s", p.HostPort, p.Protocol)
			if seen[k] {
				return Invalid("ports", fmt.Sprintf("host port %s is published twice", k), "publish each host port once")
			}
			seen[k] = true
		}
	}
	if len(s.Labels) > MaxLabels {
		return Invalid("labels", fmt.Sprintf("%d labels, the limit is %d", len(s.Labels), MaxLabels), "use fewer labels")
	}
	for k, v := range s.Labels {
		if !labelKeyRe.MatchString(k) {
			return Invalid("labels", fmt.Sprintf("label key %q is not valid", k), "use letters, digits, '_', '.', '/', '-', up to 63 characters")
		}
		if len(v) > 256 {
			return Invalid("labels", fmt.Sprintf("label %s value is %d bytes, the limit is 256", k, len(v)), "use a shorter value")
		}
	}
	if err := CheckStrategy(s.Strategy); err != nil {
		return err
	}
	if err := checkConstraints(s.Constraints); err != nil {
		return err
	}
	switch s.Network {
	case "", "bridge", "none":
	case "host":
		if len(s.Ports) > 0 {
			return Invalid("ports", "a task on the host's network uses the host's ports directly: it cannot publish any", "drop --port, or the host network")
		}
	default:
		return Invalid("network", fmt.Sprintf("unknown network %q", s.Network), "use bridge (the default), host or none")
	}
	if d := s.StopAfterDisconnect; d != 0 && (d < Duration(time.Second) || d > Duration(time.Hour)) {
		return Invalid("stop_after_disconnect", fmt.Sprintf("%s is outside 1s..1h", d),
			"e.g. 3s; with the agent's --stop-grace it should end before the coordinators' --node-down-timeout (10s), so the container is gone before a replacement starts; 0 never stops it")
	}
	if s.PidsLimit < 0 || s.PidsLimit > MaxPidsLimit {
		return Invalid("pids_limit", fmt.Sprintf("pids_limit %d is outside 0..%d", s.PidsLimit, MaxPidsLimit),
			"give the processes the container may have, e.g. 512; 0 keeps the node's limit")
	}
	return s.HealthCheck.validate()
}
