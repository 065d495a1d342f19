package queue

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestHealthCheck_NormalizeAndValidate(t *testing.T) {
	spec := TaskSpec{Image: "nginx", HealthCheck: &HealthCheck{Type: HealthHTTP, Port: 8080}}
	spec.Normalize()
	hc := spec.HealthCheck
	if hc.Path != "/" || hc.Interval != Duration(DefaultHealthInterval) || hc.Timeout != Duration(DefaultHealthTimeout) || hc.FailureThreshold != DefaultHealthThreshold {
		t.Fatalf("defaults: %+v", hc)
	}
	if err := spec.Validate(); err != nil {
		t.Fatalf("valid check refused: %v", err)
	}
	short := TaskSpec{Image: "nginx", HealthCheck: &HealthCheck{Type: HealthTCP, Port: 9000, Interval: Duration(200 * time.Millisecond)}}
	short.Normalize()
	if short.HealthCheck.Timeout != Duration(200*time.Millisecond) {
		t.Errorf("timeout defaults to %s, want the interval when that is shorter than 1s", short.HealthCheck.Timeout)
	}

	for name, tc := range map[string]struct {
		hc    HealthCheck
		field string
	}{
		"unknown type":      {HealthCheck{Type: "grpc", Port: 1}, "health_check.type"},
		"no port":           {HealthCheck{Type: HealthTCP}, "health_check.port"},
		"port too big":      {HealthCheck{Type: HealthTCP, Port: 70000}, "health_check.port"},
		"relative path":     {HealthCheck{Type: HealthHTTP, Port: 80, Path: "healthz"}, "health_check.path"},
		"space in path":     {HealthCheck{Type: HealthHTTP, Port: 80, Path: "/a b"}, "health_check.path"},
		"tcp with path":     {HealthCheck{Type: HealthTCP, Port: 80, Path: "/x"}, "health_check.path"},
		"interval too fast": {HealthCheck{Type: HealthTCP, Port: 80, Interval: Duration(time.Millisecond)}, "health_check.interval"},
		"timeout > interval": {HealthCheck{Type: HealthTCP, Port: 80, Interval: Duration(time.Second),
			Timeout: Duration(2 * time.Second)}, "health_check.timeout"},
		"negative threshold":    {HealthCheck{Type: HealthTCP, Port: 80, FailureThreshold: -1}, "health_check.failure_threshold"},
		"negative start period": {HealthCheck{Type: HealthTCP, Port: 80, StartPeriod: Duration(-time.Second)}, "health_check.start_period"},
	} {
		hc := tc.hc
		s := TaskSpec{Image: "nginx", HealthCheck: &hc}
		s.Normalize()
		err := s.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want a FieldError on %s", name, err, tc.field)
		}
	}
}

func TestDuration_JSON(t *testing.T) {
	var hc HealthCheck
	if err := json.Unmarshal([]byte(`{"type":"tcp","port":1,"interval":"1.5s","timeout":0.25}`), &hc); err != nil {
		t.Fatal(err)
	}
	if hc.Interval != Duration(1500*time.Millisecond) || hc.Timeout != Duration(250*time.Millisecond) {
		t.Errorf("decoded %+v", hc)
	}
	b, _ := json.Marshal(hc)
	if string(b) != `{"type":"tcp","port":1,"interval":"1.5s","timeout":"250ms"}` {
		t.Errorf("encoded %s", b)
	}
	for _, bad := range []string{`"soon"`, `"1x"`, `true`, `1e300`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); !errors.Is(err, ErrInvalid) {
			t.Errorf("decoding %s: %v, want ErrInvalid", bad, err)
		}
	}
}
