package coordinator

import (
	"errors"
	"strings"
	"testing"

	"github.com/orchd/orch/queue"
)

func TestDecodeTask_OrchShape(t *testing.T) {
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

func TestDecodeTask_SeedShape(t *testing.T) {
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

func TestDecodeTask_TooLarge(t *testing.T) {
	body := `{"image":"alpine","name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	_, _, err := DecodeTask(strings.NewReader(body))
	if !errors.Is(err, ErrTooLarge) || statusOf(err) != 413 {
		t.Fatalf("got %v (status %d), want 413", err, statusOf(err))
	}
}
