package coordinator

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

func TestDecodeTask_HealthCheck(t *testing.T) {
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

func TestDecodeTask_StopAfterDisconnect(t *testing.T) {
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

func TestDrainAPI_RefusesABadDeadline(t *testing.T) {
	c := &Coordinator{}
	for body, want := range map[string]string{
		`{"deadline":"-1s"}`:  "deadline",
		`{"deadline":"soon"}`: "deadline",
		`{"until":"1m"}`:      "until",
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/nodes/n1/drain", strings.NewReader(body))
		req.SetPathValue("node", "n1")
		c.drainNode(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field": "`+want+`"`) {
			t.Errorf("%s: %d %s, want 400 on %s", body, rec.Code, rec.Body.String(), want)
		}
	}
}
