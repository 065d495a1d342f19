package coordinator

import (
	"errors"
	"strings"
	"testing"

	"github.com/orchd/orch/queue"
)

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
