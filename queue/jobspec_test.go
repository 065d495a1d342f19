package queue

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

const webYAML = `
name: web
type: service
count: 3
datacenters: [dc1, dc2]
constraints: ["zone=eu"]
strategy: spread
task:
  image: nginx:1.27
  env: {MODE: prod}
  resources: {cpu: 0.25, memory: 64MiB}
  ports: [{container_port: 80}]
  health_check: {type: http, port: 80, path: /, interval: 1s}
update:
  max_parallel: 2
  canary: 1
  auto_revert: true
`

func TestParseJobSpec_ServiceWithDefaults(t *testing.T) {
	s, err := ParseJobSpec([]byte(webYAML))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "web" || s.Type != JobService || s.Count != 3 || s.Strategy != "spread" {
		t.Fatalf("spec = %+v", s)
	}
	u := s.Update
	if u.MaxParallel != 2 || u.Canary != 1 || !u.AutoRevert || u.MinHealthyTime != Duration(DefaultMinHealthyTime) ||
		u.HealthyDeadline != Duration(DefaultHealthyDeadline) || u.ProgressDeadline != Duration(DefaultProgressDeadline) {
		t.Fatalf("update = %+v: given fields kept, the rest defaulted", u)
	}
	if s.Task.RestartPolicy != RestartAlways || *s.Task.MaxRestarts != 0 {
		t.Fatalf("a service restarts always, without limit: %+v", s.Task)
	}
	ts, err := s.TaskSpec(2)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Name != "web.2" || ts.Resources.CPUMillis != 250 || ts.Resources.MemoryBytes != 64<<20 {
		t.Fatalf("task spec = %+v", ts)
	}
	want := []Constraint{{Key: "zone", Op: OpEqual, Value: "eu"}, {Key: LabelDatacenter, Op: OpIn, Value: "dc1,dc2"}}
	if len(ts.Constraints) != 2 || ts.Constraints[0] != want[0] || ts.Constraints[1] != want[1] {
		t.Fatalf("constraints = %v, want %v", ts.Constraints, want)
	}
}

func TestParseJobSpec_JSONIsTheSameSpec(t *testing.T) {
	y, err := ParseJobSpec([]byte(webYAML))
	if err != nil {
		t.Fatal(err)
	}
	j, err := ParseJobSpec([]byte(`{"name": "web", "type": "service", "count": 3, "datacenters": ["dc1", "dc2"],
 "constraints": ["zone=eu"], "strategy": "spread",
 "task": {"image": "nginx:1.27", "env": {"MODE": "prod"}, "resources": {"cpu": 0.25, "memory": "64MiB"},
          "ports": [{"container_port": 80}], "health_check": {"type": "http", "port": 80, "path": "/", "interval": "1s"}},
 "update": {"max_parallel": 2, "canary": 1, "auto_revert": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if y.TemplateKey(0) != j.TemplateKey(0) || y.Update != j.Update || y.Count != j.Count {
		t.Fatalf("YAML and JSON of one spec differ:\n%+v\n%+v", y, j)
	}
}

func TestParseJobSpec_EachType(t *testing.T) {
	for _, tc := range []struct {
		spec string
		typ  JobType
	}{
		{"name: b\ntype: batch\ncount: 20\ntask: {image: busybox, command: [sh, -c, exit 0]}", JobBatch},
		{"name: s\ntype: system\ntask: {image: busybox}", JobSystem},
		{"name: p\ntype: periodic\nperiodic: {cron: '@every 2s', prohibit_overlap: true}\ntask: {image: busybox}", JobPeriodic},
		{"name: p6\ntype: periodic\nperiodic: {cron: '*/10 * * * * *', time_zone: Europe/Berlin}\ntask: {image: busybox}", JobPeriodic},
		{"name: d\ntask: {image: busybox}", JobService},
	} {
		s, err := ParseJobSpec([]byte(tc.spec))
		if err != nil {
			t.Fatalf("%q: %v", tc.spec, err)
		}
		if s.Type != tc.typ {
			t.Fatalf("%q: type %s, want %s", tc.spec, s.Type, tc.typ)
		}
	}
}

// TestParseJobSpec_BadSpecsNameTheField is the table of the bad
// specs: each is refused with the path of the field at fault.
func TestParseJobSpec_BadSpecsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		spec, field, text string
	}{
		{"name: x\ntype: cron\ntask: {image: busybox}", "type", `unknown job type "cron"`},
		{"name: x\ncount: -1\ntask: {image: busybox}", "count", "outside"},
		{"name: x\ntype: periodic\nperiodic: {cron: '61 * * * *'}\ntask: {image: busybox}", "periodic.cron", "not a cron expression"},
		{"name: x\ntype: periodic\ntask: {image: busybox}", "periodic.cron", "needs a cron schedule"},
		{"name: x\ntask: {command: [sh]}", "task.image", "image is required"},
		{"name: x\ntask: {image: busybox, imagePullPolicy: Always}", "task.imagePullPolicy", "unknown field"},
		{"name: x\ncolour: red\ntask: {image: busybox}", "colour", "unknown field"},
		{"name: x\ntask: {image: busybox, health_check: {type: http, port: 80, pth: /}}", "task.health_check.pth", "unknown field"},
		{"name: x\ntask: {image: busybox}\nupdate: {max_parallel: 0}", "update.max_parallel", "max_parallel 0"},
		{"name: x\ntask: {image: busybox, resources: {memory: 1XB}}", "task.resources.memory", `unknown unit "XB"`},
		{"name: x\ntask: {image: busybox}\nupdate: {min_healthy_time: soon}", "update.min_healthy_time", "not a duration"},
		{"name: x\ntask: {image: busybox, health_check: {type: http, port: 0}}", "task.health_check.port", "outside"},
		{"name: x\ntask: {image: busybox, env: {1X: y}}", "task.env", "not valid"},
		{"name: x\ntask: {image: busybox}\nconstraints: [zone]", "constraints[0]", "key=value"},
		{"name: x\ncount: three\ntask: {image: busybox}", "count", "wrong type"},
		{"name: x\ntype: batch\nperiodic: {cron: '@daily'}\ntask: {image: busybox}", "periodic", "no schedule"},
		{"name: x\ntype: periodic\nperiodic: {cron: '@daily', time_zone: Mars/Olympus}\ntask: {image: busybox}", "periodic.time_zone", "unknown time zone"},
		{"name: x y\ntask: {image: busybox}", "name", "characters"},
		{"task: {image: busybox}", "name", "needs a name"},
		{"name: x\ntask: {image: busybox}\nupdate: {canary: 2}", "update.canary", "outside"},
		{"- a\n- b", "spec", "mapping"},
		{"name: x\n task: y", "spec", "not valid YAML"},
		{"", "spec", "empty"},
	} {
		_, err := ParseJobSpec([]byte(tc.spec))
		var fe *FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: err = %v, want a field error", tc.spec, err)
		}
		if fe.Field != tc.field || !strings.Contains(fe.Message, tc.text) {
			t.Errorf("%q: %s: %s; want %s: …%s…", tc.spec, fe.Field, fe.Message, tc.field, tc.text)
		}
	}
}

func TestJobSpec_TemplateKeyIgnoresWhatRestartsNothing(t *testing.T) {
	a, _ := ParseJobSpec([]byte("name: w\ncount: 3\ntask: {image: busybox}"))
	b, _ := ParseJobSpec([]byte("name: w\ncount: 6\ntask: {image: busybox}\nupdate: {max_parallel: 3}"))
	c, _ := ParseJobSpec([]byte("name: w\ncount: 3\ntask: {image: busybox, env: {A: b}}"))
	if a.TemplateKey(0) != b.TemplateKey(0) {
		t.Fatal("count and update strategy changed the template key: a scale would restart tasks")
	}
	if a.TemplateKey(0) == c.TemplateKey(0) || a.TemplateKey(0) == a.TemplateKey(1) {
		t.Fatal("a changed template or generation kept the key")
	}
}

func TestSchedule_DueLaunchesTheLatestTickOnce(t *testing.T) {
	p := PeriodicConfig{Cron: "@every 2s", TimeZone: "UTC"}
	s, err := p.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, ok, next := s.Due(t0, t0.Add(time.Second)); ok || !next.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("nothing is due a second in; next = %v", next)
	}
	tick, skipped, ok, next := s.Due(t0, t0.Add(2*time.Second))
	if !ok || !tick.Equal(t0.Add(2*time.Second)) || skipped != 0 || !next.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("Due = %v %d %v %v", tick, skipped, ok, next)
	}
	// An outage of a minute: one catch-up, for the latest tick.
	tick, skipped, ok, _ = s.Due(t0, t0.Add(time.Minute+time.Second))
	if !ok || !tick.Equal(t0.Add(time.Minute)) || skipped != 29 {
		t.Fatalf("after an outage Due = %v, skipped %d", tick, skipped)
	}
	daily := PeriodicConfig{Cron: "0 30 9 * * *", TimeZone: "Europe/Berlin"}
	ds, err := daily.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	if got := ds.Next(t0); !got.Equal(time.Date(2030, 1, 1, 8, 30, 0, 0, time.UTC)) {
		t.Fatalf("09:30 in Berlin in winter = %v, want 08:30 UTC", got)
	}
}

func TestDiffSpecs_NamesChangedFieldsByPath(t *testing.T) {
	a, _ := ParseJobSpec([]byte("name: w\ncount: 3\ntask: {image: 'busybox:1.36', env: {A: x}}"))
	b, _ := ParseJobSpec([]byte("name: w\ncount: 3\ntask: {image: 'busybox:1.37', env: {B: y}, secrets: {TOKEN: s3cret}}"))
	got := strings.Join(DiffSpecs(a, b), "\n")
	for _, want := range []string{`task.image: "busybox:1.36" → "busybox:1.37"`, `- task.env.A: "x"`, `+ task.env.B: "y"`, `+ task.secrets.TOKEN: (secret)`} {
		if !strings.Contains(got, want) {
			t.Errorf("diff lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "s3cret") {
		t.Fatalf("the diff shows a secret's value:\n%s", got)
	}
	if d := DiffSpecs(a, a); len(d) != 0 {
		t.Fatalf("a spec differs from itself: %v", d)
	}
}

// TestParseJobSpec_DocExamples parses the example of each job type in the
// package doc, so that the documentation cannot drift from the validator.
func TestParseJobSpec_DocExamples(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var examples []string
	var cur strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		if code, ok := strings.CutPrefix(line, "//\t"); ok {
			cur.WriteString(code + "\n")
			continue
		}
		if cur.Len() > 0 {
			examples = append(examples, cur.String())
			cur.Reset()
		}
	}
	var types []JobType
	for _, ex := range examples {
		spec, err := ParseJobSpec([]byte(ex))
		if err != nil {
			t.Errorf("the example does not parse: %v\n%s", err, ex)
			continue
		}
		types = append(types, spec.Type)
	}
	if want := []JobType{JobService, JobBatch, JobSystem, JobPeriodic}; !slices.Equal(types, want) {
		t.Errorf("the doc's examples are of types %v, want one of each: %v", types, want)
	}
}
