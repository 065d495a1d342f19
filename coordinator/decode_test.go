package coordinator

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

func TestDecodeTask_OrchShape_EveryField(t *testing.T) {
	id, spec, err := DecodeTask(strings.NewReader(`{"name":"web","image":"nginx:1.27","cpu":"500m","memory":"64MiB",
		"disk":1048576,"env":{"A":"1"},"command":["-sleep","1s"],"ports":[{"container_port":80,"host_port":8080}],
		"restart_policy":"on-failure","max_restarts":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != "00000000-0000-0000-0000-000000000000" {
		t.Errorf("id = %s, want nil (server chooses)", id)
	}
	want := queue.Resources{CPUMillis: 500, MemoryBytes: 64 << 20, DiskBytes: 1 << 20}
	if spec.Resources != want || spec.Name != "web" || spec.Env["A"] != "1" || len(spec.Command) != 2 ||
		spec.Ports[0].Protocol != "tcp" || spec.RestartPolicy != queue.RestartOnFailure || spec.MaxRestarts != 2 {
		t.Errorf("spec = %+v", spec)
	}
}

func TestDecodeTask_SeedShape_KeepsTheClientsID(t *testing.T) {
	id, spec, err := DecodeTask(strings.NewReader(`{
		"ID": "266592cd-960d-4091-981c-8c25c44b1018", "State": 2,
		"Task": {"State": 1, "ID": "266592cd-960d-4091-981c-8c25c44b1018", "Name": "task-1",
		         "Image": "strm/helloworld-http", "ExposedPorts": {"80/tcp": {}}, "PortBindings": {"80/tcp": "8080"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != "266592cd-960d-4091-981c-8c25c44b1018" || spec.Name != "task-1" || spec.Image != "strm/helloworld-http" {
		t.Errorf("id %s spec %+v", id, spec)
	}
	if len(spec.Ports) != 1 || spec.Ports[0].ContainerPort != 80 || spec.Ports[0].HostPort != 8080 {
		t.Errorf("ports = %+v, want 80→8080 once", spec.Ports)
	}
}

func TestDecodeTask_BadInputNamesTheField(t *testing.T) {
	for body, field := range map[string]string{
		`{`:                                     "body",
		``:                                      "body",
		`[]`:                                    "body",
		`{"image":""}`:                          "image",
		`{"name":"x"}`:                          "image",
		`{"image":"Not Valid"}`:                 "image",
		`{"image":"alpine","cpu":-1}`:           "cpu",
		`{"image":"alpine","cpu":"lots"}`:       "cpu",
		`{"image":"alpine","cpu":100000}`:       "cpu",
		`{"image":"alpine","memory":"-5"}`:      "memory",
		`{"image":"alpine","memory":"1PiB"}`:    "memory",
		`{"image":"alpine","memory":"5XB"}`:     "memory",
		`{"image":"alpine","colour":"red"}`:     "colour",
		`{"image":"alpine"} {"image":"x"}`:      "body",
		`{"image":42}`:                          "image",
		`{"Task":{"Image":"alpine","Cpu":-2}}`:  "Task.Cpu",
		`{"Task":{"Image":"alpine","Bogus":1}}`: "Bogus",
	} {
		_, _, err := DecodeTask(strings.NewReader(body))
		var fe *queue.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want a FieldError", body, err)
			continue
		}
		if fe.Field != field {
			t.Errorf("%s: field %q (%v), want %q", body, fe.Field, fe, field)
		}
		if statusOf(err) != 400 {
			t.Errorf("%s: status %d, want 400", body, statusOf(err))
		}
	}
}

func TestDecodeTask_TooLargeBodyIs413(t *testing.T) {
	body := `{"image":"alpine","name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	_, _, err := DecodeTask(strings.NewReader(body))
	if !errors.Is(err, ErrTooLarge) || statusOf(err) != 413 {
		t.Fatalf("got %v (status %d), want 413", err, statusOf(err))
	}
}

func TestDecodeTask_HealthCheck_DefaultsAndFieldErrors(t *testing.T) {
	_, spec, err := DecodeTask(strings.NewReader(`{"image":"nginx","health_check":{"type":"http","port":8080,
		"path":"/healthz","interval":"2s","failure_threshold":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	hc := spec.HealthCheck
	if hc == nil || hc.Type != queue.HealthHTTP || hc.Port != 8080 || hc.Path != "/healthz" ||
		hc.Interval != queue.Duration(2*time.Second) || hc.Timeout != queue.Duration(time.Second) || hc.FailureThreshold != 5 {
		t.Errorf("health check = %+v", hc)
	}
	for body, field := range map[string]string{
		`{"image":"nginx","health_check":{"type":"http","port":0}}`:                    "health_check.port",
		`{"image":"nginx","health_check":{"type":"exec","port":80}}`:                   "health_check.type",
		`{"image":"nginx","health_check":{"type":"tcp","port":80,"interval":"often"}}`: "health_check",
		`{"image":"nginx","health_check":{"type":"tcp","port":80,"retries":3}}`:        "retries",
	} {
		_, _, err := DecodeTask(strings.NewReader(body))
		var fe *queue.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v, want a FieldError on %s", body, err, field)
		}
	}
}

func TestDecodeTask_StopAfterDisconnect_ParsedOrRefusedByField(t *testing.T) {
	_, spec, err := DecodeTask(strings.NewReader(`{"image":"nginx","stop_after_disconnect":"3s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if spec.StopAfterDisconnect != queue.Duration(3*time.Second) {
		t.Errorf("stop_after_disconnect = %s, want 3s", spec.StopAfterDisconnect)
	}
	for _, body := range []string{
		`{"image":"nginx","stop_after_disconnect":"soon"}`,
		`{"image":"nginx","stop_after_disconnect":3}`,
		`{"image":"nginx","stop_after_disconnect":"10ms"}`,
	} {
		_, _, err := DecodeTask(strings.NewReader(body))
		var fe *queue.FieldError
		if !errors.As(err, &fe) || fe.Field != "stop_after_disconnect" {
			t.Errorf("%s: %v, want a FieldError on stop_after_disconnect", body, err)
		}
	}
}

func TestDecodeTask_StrategyAndConstraints(t *testing.T) {
	_, spec, err := DecodeTask(strings.NewReader(`{"image":"alpine","strategy":" Spread ",
		"constraints":["zone=eu", "gpu != none", {"key":"disk","op":"=","value":"ssd"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Strategy != "spread" {
		t.Errorf("strategy %q, want spread", spec.Strategy)
	}
	want := []queue.Constraint{{Key: "zone", Op: "=", Value: "eu"}, {Key: "gpu", Op: "!=", Value: "none"}, {Key: "disk", Op: "=", Value: "ssd"}}
	if len(spec.Constraints) != len(want) {
		t.Fatalf("constraints %+v, want %+v", spec.Constraints, want)
	}
	for i := range want {
		if spec.Constraints[i] != want[i] {
			t.Errorf("constraint %d = %+v, want %+v", i, spec.Constraints[i], want[i])
		}
	}
}

func TestDecodeTask_BadStrategyOrConstraintNamesTheField(t *testing.T) {
	for body, field := range map[string]string{
		`{"image":"alpine","strategy":"fastest"}`:                                  "strategy",
		`{"image":"alpine","strategy":7}`:                                          "strategy",
		`{"image":"alpine","constraints":["zone"]}`:                                "constraints",
		`{"image":"alpine","constraints":["=eu"]}`:                                 "constraints",
		`{"image":"alpine","constraints":[{"key":"zone","op":">","value":"1"}]}`:   "constraints",
		`{"image":"alpine","constraints":[{"key":"zone","value":"eu","extra":1}]}`: "constraints",
		`{"image":"alpine","constraints":[{"key":"bad key","op":"=","value":""}]}`: "constraints",
		`{"image":"alpine","constraints":[42]}`:                                    "constraints",
	} {
		_, _, err := DecodeTask(strings.NewReader(body))
		var fe *queue.FieldError
		if !errors.As(err, &fe) || fe.Field != field || statusOf(err) != 400 {
			t.Errorf("%s: got %v, want a 400 FieldError on %q", body, err, field)
		}
	}
}
