package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// TaskRequest is orch's own task JSON for POST /tasks. CPU may be a number of
// cores or a string ("500m", "0.5"); memory and disk a number of bytes or a
// string with a unit ("512MiB", "2G").
type TaskRequest struct {
	ID      string            `json:"id,omitempty"`
	Name    string            `json:"name,omitempty"`
	Image   string            `json:"image"`
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Secrets are write-only environment variables: accepted, sealed and
	// never shown again (the task names them in secret_keys).
	Secrets       map[string]string   `json:"secrets,omitempty"`
	CPU           *Quantity           `json:"cpu,omitempty"`
	Memory        *Quantity           `json:"memory,omitempty"`
	Disk          *Quantity           `json:"disk,omitempty"`
	RestartPolicy queue.RestartPolicy `json:"restart_policy,omitempty"`
	MaxRestarts   int                 `json:"max_restarts,omitempty"`
	Ports         []queue.Port        `json:"ports,omitempty"`
	Labels        map[string]string   `json:"labels,omitempty"`
	// Strategy overrides the coordinator's placement strategy.
	Strategy string `json:"strategy,omitempty"`
	// Constraints are label constraints on the node, each "key=value",
	// "key!=value" or {"key", "op", "value"}.
	Constraints []queue.Constraint `json:"constraints,omitempty"`
	HealthCheck *queue.HealthCheck `json:"health_check,omitempty"`
	// Privileged and Network "host" need an admin token.
	Privileged bool   `json:"privileged,omitempty"`
	Network    string `json:"network,omitempty"`
	// StopAfterDisconnect is a duration such as "3s".
	StopAfterDisconnect string `json:"stop_after_disconnect,omitempty"`
	// PidsLimit lowers the node's process limit for this task's container.
	PidsLimit int64 `json:"pids_limit,omitempty"`
	// Volumes are named volumes or (admin only) host paths to mount.
	Volumes []queue.Mount `json:"volumes,omitempty"`
}

// Quantity is a resource amount as a user writes it: a JSON number or
// string (the job spec's, so that a task and a job's task template read
// alike).
type Quantity = queue.Quantity

// seedEnvelope is the body the seed orchestrator's manager takes: a task
// event wrapping a task, with the seed's integer states.
type seedEnvelope struct {
	ID        string `json:"ID"`
	State     queue.State
	Timestamp json.RawMessage
	Task      *seedTask
}

type seedTask struct {
	ID            string
	ContainerID   string
	Name          string
	State         queue.State
	Image         string
	Cpu           float64
	Memory        int64
	Disk          int64
	ExposedPorts  map[string]struct{}
	PortBindings  map[string]string
	RestartPolicy string
	StartTime     json.RawMessage
	FinishTime    json.RawMessage
	HealthCheck   string
	RestartCount  int
}

// DecodeTask reads a POST /tasks body in either shape, refusing unknown fields
// and trailing data, and returns the id the client chose (or uuid.Nil) and a
// normalized, validated spec.
func DecodeTask(r io.Reader) (uuid.UUID, queue.TaskSpec, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		return uuid.Nil, queue.TaskSpec{}, queue.Invalid("body", "could not read the request body", err.Error())
	}
	if len(body) > MaxBodyBytes {
		return uuid.Nil, queue.TaskSpec{}, ErrTooLarge
	}
	return decodeTask(body)
}

// decodeTask is DecodeTask of a body read already.
func decodeTask(body []byte) (uuid.UUID, queue.TaskSpec, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return uuid.Nil, queue.TaskSpec{}, jsonError(err)
	}
	var id uuid.UUID
	var spec queue.TaskSpec
	var err error
	if _, seed := probe["Task"]; seed {
		var env seedEnvelope
		if err := strict(body, &env); err != nil {
			return uuid.Nil, queue.TaskSpec{}, err
		}
		if env.Task == nil {
			return uuid.Nil, queue.TaskSpec{}, queue.Invalid("Task", "Task must be an object", `send {"Task": {"Image": "..."}}`)
		}
		id, spec, err = fromSeed(env)
		if err != nil {
			return uuid.Nil, queue.TaskSpec{}, err
		}
	} else {
		var req TaskRequest
		if err := strict(body, &req); err != nil {
			var fe *queue.FieldError
			if errors.As(err, &fe) && fe.Field == "duration" { // only health_check has durations
				fe.Field = "health_check"
			}
			return uuid.Nil, queue.TaskSpec{}, err
		}
		if id, err = parseID("id", req.ID); err != nil {
			return uuid.Nil, queue.TaskSpec{}, err
		}
		spec, err = req.Spec()
		if err != nil {
			return uuid.Nil, queue.TaskSpec{}, err
		}
	}
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return uuid.Nil, queue.TaskSpec{}, err
	}
	return id, spec, nil
}

// Spec turns the request into a spec, parsing the resource quantities.
func (req TaskRequest) Spec() (queue.TaskSpec, error) {
	spec := queue.TaskSpec{
		Name: req.Name, Image: req.Image, Command: req.Command, Env: req.Env, Secrets: req.Secrets,
		PidsLimit:     req.PidsLimit,
		RestartPolicy: req.RestartPolicy, MaxRestarts: req.MaxRestarts, Ports: req.Ports, Labels: req.Labels,
		Strategy: req.Strategy, Constraints: req.Constraints,
		HealthCheck: req.HealthCheck, Privileged: req.Privileged, Network: req.Network,
		Volumes: req.Volumes,
	}
	var err error
	if req.CPU != nil {
		if spec.Resources.CPUMillis, err = queue.ParseCPU(string(*req.CPU)); err != nil {
			return spec, queue.Invalid("cpu", err.Error(), "give cores like 0.5 or millicores like 500m")
		}
	}
	if req.Memory != nil {
		if spec.Resources.MemoryBytes, err = queue.ParseBytes(string(*req.Memory)); err != nil {
			return spec, queue.Invalid("memory", err.Error(), "give a size like 512MiB or 2G")
		}
	}
	if req.Disk != nil {
		if spec.Resources.DiskBytes, err = queue.ParseBytes(string(*req.Disk)); err != nil {
			return spec, queue.Invalid("disk", err.Error(), "give a size like 1GiB")
		}
	}
	if req.StopAfterDisconnect != "" {
		d, err := time.ParseDuration(req.StopAfterDisconnect)
		if err != nil {
			return spec, queue.Invalid("stop_after_disconnect", fmt.Sprintf("%q is not a duration", req.StopAfterDisconnect), "write e.g. 3s")
		}
		spec.StopAfterDisconnect = queue.Duration(d)
	}
	return spec, nil
}

func fromSeed(env seedEnvelope) (uuid.UUID, queue.TaskSpec, error) {
	t := env.Task
	id, err := parseID("Task.ID", t.ID)
	if err != nil {
		return uuid.Nil, queue.TaskSpec{}, err
	}
	if id == uuid.Nil {
		if id, err = parseID("ID", env.ID); err != nil {
			return uuid.Nil, queue.TaskSpec{}, err
		}
	}
	if t.Cpu < 0 || t.Cpu > queue.MaxCPUMillis {
		return id, queue.TaskSpec{}, queue.Invalid("Task.Cpu", fmt.Sprintf("Cpu %v is out of range", t.Cpu), "give cores, e.g. 0.5")
	}
	spec := queue.TaskSpec{
		Name:  t.Name,
		Image: t.Image,
		Resources: queue.Resources{
			CPUMillis:   int64(t.Cpu * 1000),
			MemoryBytes: t.Memory,
			DiskBytes:   t.Disk,
		},
	}
	switch t.RestartPolicy {
	case "", "no", "never":
		spec.RestartPolicy = queue.RestartNever
	case "on-failure":
		spec.RestartPolicy = queue.RestartOnFailure
	case "always", "unless-stopped":
		spec.RestartPolicy = queue.RestartAlways
	default:
		return id, spec, queue.Invalid("Task.RestartPolicy", fmt.Sprintf("unknown restart policy %q", t.RestartPolicy), "use no, on-failure, always or unless-stopped")
	}
	for cport, hport := range t.PortBindings {
		p, err := parsePort(cport)
		if err != nil {
			return id, spec, queue.Invalid("Task.PortBindings", err.Error(), `use {"80/tcp": "8080"}`)
		}
		if hport != "" {
			if p.HostPort, err = strconv.Atoi(hport); err != nil {
				return id, spec, queue.Invalid("Task.PortBindings", fmt.Sprintf("host port %q is not a number", hport), `use {"80/tcp": "8080"}`)
			}
		}
		spec.Ports = append(spec.Ports, p)
	}
	for cport := range t.ExposedPorts {
		if _, bound := t.PortBindings[cport]; bound {
			continue
		}
		p, err := parsePort(cport)
		if err != nil {
			return id, spec, queue.Invalid("Task.ExposedPorts", err.Error(), `use {"80/tcp": {}}`)
		}
		spec.Ports = append(spec.Ports, p)
	}
	return id, spec, nil
}

// parseID reads a client-chosen task id; "" means the server chooses.
func parseID(field, s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, queue.Invalid(field, fmt.Sprintf("%q is not a UUID", s), "omit it to let orch choose, or send e.g. 266592cd-960d-4091-981c-8c25c44b1018")
	}
	return id, nil
}

// parsePort reads Docker's "80/tcp" notation.
func parsePort(s string) (queue.Port, error) {
	num, proto, _ := strings.Cut(s, "/")
	n, err := strconv.Atoi(num)
	if err != nil {
		return queue.Port{}, fmt.Errorf("port %q is not PORT[/PROTO]", s)
	}
	return queue.Port{ContainerPort: n, Protocol: proto}, nil
}

// ErrTooLarge is a request body over MaxBodyBytes.
var ErrTooLarge = errors.New("request body is larger than 1 MiB")

// strict decodes exactly one JSON value into out, refusing unknown fields.
func strict(body []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return queue.Invalid("body", "unexpected data after the JSON object", "send exactly one JSON object")
	}
	return nil
}

// jsonError names the field a decoding error is about.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return queue.Invalid("body", fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, err), "send a valid JSON object")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return queue.Invalid(field, fmt.Sprintf("wrong type: got a JSON %s, want %s", typ.Value, queue.KindOf(typ.Type, queue.JSONWords)), "check the field's type in the API reference")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return queue.Invalid(name, fmt.Sprintf("unknown field %q", name), "remove it; see the API reference for the fields a task takes")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return queue.Invalid("body", "the body is empty or cut short", "send a JSON object")
	}
	var fe *queue.FieldError
	if errors.As(err, &fe) {
		return fe
	}
	return queue.Invalid("body", err.Error(), "send a valid JSON object")
}
