package queue

import (
	"errors"
	"strings"
	"testing"
)

func TestParseConstraint(t *testing.T) {
	for in, want := range map[string]Constraint{
		"zone=eu":      {"zone", "=", "eu"},
		"gpu!=none":    {"gpu", "!=", "none"},
		" disk = ssd ": {"disk", "=", "ssd"},
		"kind=":        {"kind", "=", ""},
		"a/b.c-d=x=y":  {"a/b.c-d", "=", "x=y"},
		"rack!=r1!=r2": {"rack", "!=", "r1!=r2"},
	} {
		got, err := ParseConstraint(in)
		if err != nil || got != want {
			t.Errorf("ParseConstraint(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := ParseConstraint("zone"); err == nil {
		t.Error("ParseConstraint(zone) accepted a constraint without an operator")
	}
}

func TestConstraint_Matches(t *testing.T) {
	labels := map[string]string{"zone": "eu", "gpu": "a100"}
	for c, want := range map[Constraint]bool{
		{"zone", "=", "eu"}:   true,
		{"zone", "=", "us"}:   false,
		{"rack", "=", "r1"}:   false, // absent label never equals
		{"zone", "!=", "us"}:  true,
		{"zone", "!=", "eu"}:  false,
		{"rack", "!=", "r1"}:  true, // absent label is not r1
		{"gpu", "!=", "a100"}: false,
	} {
		if got := c.Matches(labels); got != want {
			t.Errorf("%s on %v = %v, want %v", c, labels, got, want)
		}
	}
}

func TestValidate_StrategyAndConstraints(t *testing.T) {
	for name, tc := range map[string]struct {
		spec  TaskSpec
		field string // "" = valid
	}{
		"every strategy":       {TaskSpec{Strategy: "round-robin"}, ""},
		"upper-case strategy":  {TaskSpec{Strategy: " EPVM "}, ""},
		"unknown strategy":     {TaskSpec{Strategy: "fastest"}, "strategy"},
		"good constraints":     {TaskSpec{Constraints: []Constraint{{"zone", "=", "eu"}, {"gpu", "!=", ""}}}, ""},
		"bad operator":         {TaskSpec{Constraints: []Constraint{{"zone", "~=", "eu"}}}, "constraints"},
		"empty key":            {TaskSpec{Constraints: []Constraint{{"", "=", "eu"}}}, "constraints"},
		"key with spaces":      {TaskSpec{Constraints: []Constraint{{"my zone", "=", "eu"}}}, "constraints"},
		"value too long":       {TaskSpec{Constraints: []Constraint{{"zone", "=", strings.Repeat("x", 257)}}}, "constraints"},
		"too many constraints": {TaskSpec{Constraints: make([]Constraint, MaxConstraints+1)}, "constraints"},
	} {
		s := tc.spec
		s.Image = "alpine"
		s.Normalize()
		err := s.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", name, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || fe.Hint == "" {
			t.Errorf("%s: got %v, want a FieldError on %q with a hint", name, err, tc.field)
		}
	}
}
