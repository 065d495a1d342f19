package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// JobSpec is what a user submits to run a job (orch job run FILE, POST
// /jobs): YAML or JSON with these fields. The package doc ("Jobs")
// describes them with an example of each type.
type JobSpec struct {
	Name string  `json:"name"`
	Type JobType `json:"type"`
	// Count is how many tasks a service keeps running, or a batch job (and
	// each instance of a periodic one) runs to completion. System jobs run
	// one task per eligible node instead.
	Count int `json:"count"`
	// Datacenters restricts the job to nodes whose dc label is one of
	// these (any datacenter when empty).
	Datacenters []string `json:"datacenters,omitempty"`
	// Constraints and Strategy apply to every task of the job, as they do
	// to a task of orch task create.
	Constraints []Constraint `json:"constraints,omitempty"`
	Strategy    string       `json:"strategy,omitempty"`
	// Task is the template of every task of the job.
	Task TaskTemplate `json:"task"`
	// Update says how a service rolls from one version to the next.
	Update UpdateStrategy `json:"update"`
	// Periodic is the schedule of a periodic job (and only of one).
	Periodic *PeriodicConfig `json:"periodic,omitempty"`
}

// TaskTemplate is everything orch task create takes, as a job's tasks get
// it. Resource amounts are written as people write them: cpu as cores (0.5)
// or millicores ("500m"), memory and disk with a unit ("256MiB").
type TaskTemplate struct {
	Image   string            `json:"image"`
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Secrets are write-only, as for a task: a job's versions keep them
	// sealed, and no answer shows a value.
	Secrets   map[string]string `json:"secrets,omitempty"`
	Resources ResourceRequest   `json:"resources"`
	// RestartPolicy defaults to always for services and system jobs and to
	// on-failure for batch and periodic ones; MaxRestarts to no limit for
	// the former and 3 for the latter.
	RestartPolicy       RestartPolicy     `json:"restart_policy,omitempty"`
	MaxRestarts         *int              `json:"max_restarts,omitempty"`
	Ports               []Port            `json:"ports,omitempty"`
	Labels              map[string]string `json:"labels,omitempty"`
	HealthCheck         *HealthCheck      `json:"health_check,omitempty"`
	Privileged          bool              `json:"privileged,omitempty"`
	Network             string            `json:"network,omitempty"`
	StopAfterDisconnect Duration          `json:"stop_after_disconnect,omitempty"`
	PidsLimit           int64             `json:"pids_limit,omitempty"`
	Volumes             []Mount           `json:"volumes,omitempty"`
}

// ResourceRequest is a task's request as written in a spec.
type ResourceRequest struct {
	CPU    Quantity `json:"cpu,omitempty"`
	Memory Quantity `json:"memory,omitempty"`
	Disk   Quantity `json:"disk,omitempty"`
}

// Quantity is a resource amount as a user writes it: a JSON number or
// string, kept as its text.
type Quantity string

// UnmarshalJSON keeps the literal text of a number or string.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	if ok, err := parseStringForm(b, q, func(s string) (Quantity, error) { return Quantity(s), nil }); ok {
		return err
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		// A type error, so that a JSON decoder names the field.
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[string]()}
	}
	*q = Quantity(n.String())
	return nil
}

// jsonKind names the kind of a raw JSON value, for error messages.
func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// UpdateStrategy is how a service moves to a new version: new tasks start
// beside the old ones, at most MaxParallel at a time, and an old task is
// stopped only once its replacement has been healthy for MinHealthyTime.
type UpdateStrategy struct {
	MaxParallel    int      `json:"max_parallel"`
	MinHealthyTime Duration `json:"min_healthy_time"`
	// HealthyDeadline is how long a new task has to become healthy; one
	// that does not fails the deployment.
	HealthyDeadline Duration `json:"healthy_deadline"`
	// ProgressDeadline fails a deployment in which no new task became
	// healthy for that long.
	ProgressDeadline Duration `json:"progress_deadline"`
	// AutoRevert goes back to the last version whose deployment succeeded
	// when a deployment fails.
	AutoRevert bool `json:"auto_revert"`
	// Canary starts this many new tasks beside the old ones and waits for
	// orch job promote before replacing the rest.
	Canary int `json:"canary"`
}

// Defaults of UpdateStrategy: Nomad's.
const (
	DefaultMaxParallel      = 1
	DefaultMinHealthyTime   = 10 * time.Second
	DefaultHealthyDeadline  = 5 * time.Minute
	DefaultProgressDeadline = 10 * time.Minute
)

// PeriodicConfig is the schedule of a periodic job.
type PeriodicConfig struct {
	// Cron is a cron expression: five fields, or six with seconds first,
	// or a descriptor (@hourly, @daily, @every 30s).
	Cron string `json:"cron"`
	// TimeZone is the IANA zone the expression is read in (default UTC).
	TimeZone string `json:"time_zone,omitempty"`
	// ProhibitOverlap skips a tick while the previous instance still runs.
	ProhibitOverlap bool `json:"prohibit_overlap,omitempty"`
}

// Limits of a job spec.
const (
	MaxJobNameLen = 100 // leaves room for a task's ".N" and a periodic instance's suffix
	MaxJobCount   = 10000
	MaxJobBytes   = 1 << 20
)

// Batch jobs restart a failed task this many times unless the spec says.
const DefaultBatchMaxRestarts = 3

// ParseJobSpec reads a job spec in YAML or JSON (JSON is YAML, so one
// reader takes both), refusing unknown fields by their path, and returns
// it normalized and validated. Every error is a *FieldError naming the
// field by its path, e.g. task.resources.memory.
func ParseJobSpec(data []byte) (JobSpec, error) {
	if len(data) > MaxJobBytes {
		return JobSpec{}, Invalid("spec", fmt.Sprintf("the spec is %d bytes, the limit is %d", len(data), MaxJobBytes), "split it into several jobs")
	}
	tree, err := decodeTree(data)
	if err != nil {
		return JobSpec{}, err
	}
	return JobSpecFromTree(tree)
}

// JobSpecFromTree is ParseJobSpec for a spec already decoded into plain
// values (maps, slices, strings, numbers, booleans), as JSON and YAML
// decoders make them.
func JobSpecFromTree(tree any) (JobSpec, error) {
	if _, ok := tree.(map[string]any); !ok {
		return JobSpec{}, Invalid("spec", "a job spec must be a mapping (an object) of fields", "start with name:, type: and task:")
	}
	if err := knownFields(tree, reflect.TypeFor[JobSpec](), ""); err != nil {
		return JobSpec{}, err
	}
	b, err := json.Marshal(tree)
	if err != nil {
		return JobSpec{}, Invalid("spec", err.Error(), "write plain values: strings, numbers, lists and mappings")
	}
	s := NewJobSpec()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return JobSpec{}, specDecodeError(err)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return JobSpec{}, err
	}
	return s, nil
}

// specDecodeError names the field a decoding error is about by its path.
func specDecodeError(err error) error {
	var typ *json.UnmarshalTypeError
	var fe *FieldError
	switch {
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "spec"
		}
		return Invalid(field, fmt.Sprintf("wrong type: got %s, want %s", typ.Value, KindOf(typ.Type, SpecWords)), "see the job spec reference (go doc github.com/orchd/orch/queue)")
	case errors.As(err, &fe):
		return fe
	}
	return Invalid("spec", err.Error(), "see the job spec reference (go doc github.com/orchd/orch/queue)")
}

// Vocabulary names the kinds of value in a format's own words.
type Vocabulary struct{ Mapping, List string }

// SpecWords and JSONWords are the words of a job spec (YAML or JSON) and of
// the HTTP API's JSON.
var (
	SpecWords = Vocabulary{Mapping: "a mapping", List: "a list"}
	JSONWords = Vocabulary{Mapping: "an object", List: "an array"}
)

// KindOf names a Go type as the value a document should hold there, for
// errors that say what was expected.
func KindOf(t reflect.Type, words Vocabulary) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return words.Mapping
	case reflect.Slice, reflect.Array:
		return words.List
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return "a number"
}

// knownFields walks a decoded spec beside the Go type it is meant for and
// refuses the first field the type does not have, by its path. Maps of
// the type (env, labels) take any key; types that read themselves from
// JSON (durations, quantities, constraints) are left to their readers.
func knownFields(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		// A type that reads itself: let it read this value alone, so
		// that its complaint names the field by its path.
		b, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				return &FieldError{Field: path, Message: fe.Message, Hint: fe.Hint}
			}
			return Invalid(path, err.Error(), "see the job spec reference (go doc github.com/orchd/orch/queue)")
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil // the decoder names the wrong type
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				return Invalid(joinPath(path, k), fmt.Sprintf("unknown field %q", k), "remove it, or check its spelling against the job spec reference")
			}
			if err := knownFields(m[k], ft, joinPath(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		items, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, item := range items {
			if err := knownFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// Normalize fills the defaults a user may leave out. It never rejects
// anything; it is idempotent.
func (s *JobSpec) Normalize() {
	s.Name = strings.TrimSpace(s.Name)
	s.Type = JobType(strings.ToLower(strings.TrimSpace(string(s.Type))))
	if s.Type == "" {
		s.Type = JobService
	}
	s.Strategy = strings.ToLower(strings.TrimSpace(s.Strategy))
	t := &s.Task
	t.Image = strings.TrimSpace(t.Image)
	if t.RestartPolicy == "" {
		t.RestartPolicy = RestartAlways
		if s.Type == JobBatch || s.Type == JobPeriodic {
			t.RestartPolicy = RestartOnFailure
		}
	}
	if t.MaxRestarts == nil {
		n := 0
		if s.Type == JobBatch || s.Type == JobPeriodic {
			n = DefaultBatchMaxRestarts
		}
		t.MaxRestarts = &n
	}
	for i := range t.Ports {
		if t.Ports[i].Protocol == "" {
			t.Ports[i].Protocol = "tcp"
		}
		t.Ports[i].Protocol = strings.ToLower(t.Ports[i].Protocol)
	}
	t.HealthCheck.normalize()
	if s.Periodic != nil && s.Periodic.TimeZone == "" {
		s.Periodic.TimeZone = "UTC"
	}
}

// NewJobSpec is a spec with the defaults that a decoder cannot tell from
// a value given as zero (a count of 0, max_parallel 0): ParseJobSpec
// decodes into it, which keeps them where the input says nothing.
func NewJobSpec() JobSpec {
	return JobSpec{Count: 1, Update: UpdateStrategy{
		MaxParallel:      DefaultMaxParallel,
		MinHealthyTime:   Duration(DefaultMinHealthyTime),
		HealthyDeadline:  Duration(DefaultHealthyDeadline),
		ProgressDeadline: Duration(DefaultProgressDeadline),
	}}
}

// Validate checks a normalized spec and returns a *FieldError for the
// first bad field, named by its path. The API and the CLI both call it.
func (s *JobSpec) Validate() error {
	switch {
	case s.Name == "":
		return Invalid("name", "a job needs a name", "add name: web")
	case len(s.Name) > MaxJobNameLen:
		return Invalid("name", fmt.Sprintf("name is %d bytes long, the limit is %d", len(s.Name), MaxJobNameLen), "use a shorter name")
	case !nameRe.MatchString(s.Name):
		return Invalid("name", fmt.Sprintf("name %q has characters outside [a-zA-Z0-9_.-] or does not start with a letter or digit", s.Name), "use letters, digits, '_', '.', '-'")
	}
	if !slices.Contains(JobTypes, s.Type) {
		return Invalid("type", fmt.Sprintf("unknown job type %q", s.Type), "use service, batch, system or periodic")
	}
	if s.Count < 0 || s.Count > MaxJobCount {
		return Invalid("count", fmt.Sprintf("count %d is outside 0..%d", s.Count, MaxJobCount), "give how many tasks the job runs, e.g. 3")
	}
	for i, dc := range s.Datacenters {
		if dc == "" || strings.Contains(dc, ",") || len(dc) > 64 {
			return Invalid(fmt.Sprintf("datacenters[%d]", i), fmt.Sprintf("%q is not a datacenter name", dc), "name datacenters as agents' --datacenter does, e.g. dc1")
		}
	}
	if err := checkConstraints(s.Constraints); err != nil {
		return prefixed("", err)
	}
	if err := CheckStrategy(s.Strategy); err != nil {
		return err
	}
	if err := s.validateTask(); err != nil {
		return err
	}
	if err := s.Update.validate(s.Count); err != nil {
		return err
	}
	return s.validatePeriodic()
}

// validateTask checks the template as TaskSpec.Validate checks a task, and
// names its fields by their path in the spec.
func (s *JobSpec) validateTask() error {
	if s.Task.Image == "" {
		return Invalid("task.image", "image is required", "give the container image, e.g. image: nginx:1.27")
	}
	if n := *s.Task.MaxRestarts; n < 0 || n > MaxRestarts {
		return Invalid("task.max_restarts", fmt.Sprintf("max_restarts %d is outside 0..%d", n, MaxRestarts), "give a count between 0 and 1000")
	}
	spec, err := s.TaskSpec(0)
	if err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return prefixed("task.", err)
	}
	return nil
}

// prefixed names a task field of err by its path in a job spec.
func prefixed(prefix string, err error) error {
	fe, ok := err.(*FieldError)
	if !ok {
		return err
	}
	out := *fe
	switch fe.Field {
	case "cpu", "memory", "disk":
		out.Field = "task.resources." + fe.Field
	case "constraints", "strategy":
		out.Field = fe.Field // job-level fields
	default:
		out.Field = prefix + fe.Field
	}
	return &out
}

func (u *UpdateStrategy) validate(count int) error {
	switch {
	case u.MaxParallel < 1:
		return Invalid("update.max_parallel", fmt.Sprintf("max_parallel %d: at least one task must be replaced at a time", u.MaxParallel), "give 1 or more")
	case u.MinHealthyTime < 0 || u.MinHealthyTime > Duration(time.Hour):
		return Invalid("update.min_healthy_time", fmt.Sprintf("%s is outside 0..1h", u.MinHealthyTime), "e.g. 10s")
	case u.HealthyDeadline <= u.MinHealthyTime:
		return Invalid("update.healthy_deadline", fmt.Sprintf("%s must be longer than min_healthy_time (%s)", u.HealthyDeadline, u.MinHealthyTime), "e.g. 5m")
	case u.ProgressDeadline < u.HealthyDeadline:
		return Invalid("update.progress_deadline", fmt.Sprintf("%s must be at least healthy_deadline (%s)", u.ProgressDeadline, u.HealthyDeadline), "e.g. 10m")
	case u.ProgressDeadline > Duration(24*time.Hour):
		return Invalid("update.progress_deadline", fmt.Sprintf("%s is longer than a day", u.ProgressDeadline), "e.g. 10m")
	case u.Canary < 0 || u.Canary > count:
		return Invalid("update.canary", fmt.Sprintf("canary %d is outside 0..count (%d)", u.Canary, count), "e.g. 1")
	}
	return nil
}

func (s *JobSpec) validatePeriodic() error {
	if s.Type != JobPeriodic {
		if s.Periodic != nil {
			return Invalid("periodic", fmt.Sprintf("a %s job has no schedule", s.Type), "use type: periodic, or remove the periodic block")
		}
		return nil
	}
	if s.Periodic == nil || strings.TrimSpace(s.Periodic.Cron) == "" {
		return Invalid("periodic.cron", "a periodic job needs a cron schedule", `add periodic: {cron: "*/5 * * * *"}`)
	}
	if _, err := s.Periodic.Schedule(); err != nil {
		return err
	}
	return nil
}

// TaskSpec is the spec of the job's task at index: the template with the
// job's constraints (its datacenters among them) and strategy, named
// JOB.index. Its secrets are the template's, which a stored version holds
// sealed apart (nil here).
func (s *JobSpec) TaskSpec(index int) (TaskSpec, error) {
	t := s.Task
	spec := TaskSpec{
		Name: JobTaskName(s.Name, index), Image: t.Image, Command: t.Command, Env: t.Env, Secrets: t.Secrets,
		RestartPolicy: t.RestartPolicy, Ports: t.Ports, Labels: t.Labels, Strategy: s.Strategy,
		HealthCheck: t.HealthCheck, Privileged: t.Privileged, Network: t.Network,
		StopAfterDisconnect: t.StopAfterDisconnect, PidsLimit: t.PidsLimit, Volumes: t.Volumes,
	}
	if t.MaxRestarts != nil {
		spec.MaxRestarts = *t.MaxRestarts
	}
	var err error
	r := t.Resources
	if r.CPU != "" {
		if spec.Resources.CPUMillis, err = ParseCPU(string(r.CPU)); err != nil {
			return spec, Invalid("task.resources.cpu", err.Error(), "give cores like 0.5 or millicores like 500m")
		}
	}
	if r.Memory != "" {
		if spec.Resources.MemoryBytes, err = ParseBytes(string(r.Memory)); err != nil {
			return spec, Invalid("task.resources.memory", err.Error(), "give a size like 512MiB or 2G")
		}
	}
	if r.Disk != "" {
		if spec.Resources.DiskBytes, err = ParseBytes(string(r.Disk)); err != nil {
			return spec, Invalid("task.resources.disk", err.Error(), "give a size like 1GiB")
		}
	}
	spec.Constraints = append([]Constraint(nil), s.Constraints...)
	if len(s.Datacenters) > 0 {
		spec.Constraints = append(spec.Constraints, Constraint{Key: LabelDatacenter, Op: OpIn, Value: strings.Join(s.Datacenters, ",")})
	}
	return spec, nil
}

// TemplateKey identifies what a task of this spec runs, with the version's
// generation: two versions whose keys are equal can hand their tasks over
// in place, without restarting them (a changed count, update strategy or
// schedule changes no task). Secrets are left out: a change of their
// values bumps the generation instead.
func (s *JobSpec) TemplateKey(generation int) string {
	t := s.Task
	t.Secrets = nil
	b, _ := json.Marshal(struct {
		Task        TaskTemplate
		Datacenters []string
		Constraints []Constraint
		Strategy    string
		Generation  int
	}{t, s.Datacenters, s.Constraints, s.Strategy, generation})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// Stored is the spec as a version keeps it: without its secrets' values.
func (s JobSpec) Stored() JobSpec {
	s.Task.Secrets = nil
	return s
}

// SecretKeys names the template's secrets, sorted.
func (s *JobSpec) SecretKeys() []string {
	keys := make([]string, 0, len(s.Task.Secrets))
	for k := range s.Task.Secrets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// NeedsPrivileges reports whether the job's tasks need an admin.
func (s *JobSpec) NeedsPrivileges() bool {
	return s.Task.Privileged || s.Task.Network == "host" || s.Task.HostMounts()
}
