package queue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Constraint operators.
const (
	// OpEqual requires the node to carry the label with exactly this value.
	OpEqual = "="
	// OpNotEqual requires the node not to carry the label with this value:
	// a node without the label at all matches.
	OpNotEqual = "!="
	// OpIn requires the node to carry the label with one of the values in
	// a comma-separated list: a job's datacenters become `dc in dc1,dc2`.
	OpIn = "in"
)

// MaxConstraints bounds how many constraints one task may carry.
const MaxConstraints = 32

// Constraint restricts a task to nodes whose labels match: `zone=eu` or
// `gpu!=none`.
type Constraint struct {
	Key   string `json:"key"`
	Op    string `json:"op"`
	Value string `json:"value"`
}

// String renders the constraint as a user writes it, e.g. "zone=eu".
func (c Constraint) String() string {
	if c.Op == OpIn {
		return c.Key + " in " + c.Value
	}
	return c.Key + c.Op + c.Value
}

// Matches reports whether a node with these labels satisfies c.
func (c Constraint) Matches(labels map[string]string) bool {
	v, ok := labels[c.Key]
	return c.match(v, ok)
}

// MatchesNode reports whether node n satisfies c: the key node.name
// (ConstraintNodeName) is matched against the node's name, any other key
// against its labels.
func (c Constraint) MatchesNode(n *Node) bool {
	if c.Key == ConstraintNodeName {
		return c.match(n.Name, true)
	}
	v, ok := n.Labels[c.Key]
	return c.match(v, ok)
}

// match applies c to a node's value for c.Key (ok: it has one).
func (c Constraint) match(v string, ok bool) bool {
	switch c.Op {
	case OpNotEqual:
		return !ok || v != c.Value
	case OpIn:
		if !ok {
			return false
		}
		for _, want := range strings.Split(c.Value, ",") {
			if want == v {
				return true
			}
		}
		return false
	}
	return ok && v == c.Value
}

// ParseConstraint reads "key=value" or "key!=value".
func ParseConstraint(s string) (Constraint, error) {
	if k, v, ok := strings.Cut(s, OpNotEqual); ok {
		return Constraint{Key: strings.TrimSpace(k), Op: OpNotEqual, Value: strings.TrimSpace(v)}, nil
	}
	if k, v, ok := strings.Cut(s, OpEqual); ok {
		return Constraint{Key: strings.TrimSpace(k), Op: OpEqual, Value: strings.TrimSpace(v)}, nil
	}
	return Constraint{}, Invalid("constraints", fmt.Sprintf("%q is not key=value or key!=value", s),
		"write e.g. zone=eu or gpu!=none")
}

// UnmarshalJSON takes the object form {"key":"zone","op":"=","value":"eu"}
// or the string form "zone=eu", which is what people type.
func (c *Constraint) UnmarshalJSON(b []byte) error {
	if ok, err := parseStringForm(b, c, ParseConstraint); ok {
		return err
	}
	type plain Constraint // no UnmarshalJSON: no recursion
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Invalid("constraints", fmt.Sprintf("a constraint must be \"key=value\" or {\"key\", \"op\", \"value\"}: %v", err),
			`write "zone=eu" or {"key": "zone", "op": "=", "value": "eu"}`)
	}
	*c = Constraint(p)
	return nil
}

// checkConstraints validates a spec's constraints; Validate calls it.
func checkConstraints(cs []Constraint) error {
	if len(cs) > MaxConstraints {
		return Invalid("constraints", fmt.Sprintf("%d constraints, the limit is %d", len(cs), MaxConstraints), "use fewer constraints")
	}
	for _, c := range cs {
		if c.Op != OpEqual && c.Op != OpNotEqual && c.Op != OpIn {
			return Invalid("constraints", fmt.Sprintf("constraint %q has operator %q", c.String(), c.Op), "use = or != (or in, with a comma-separated list of values)")
		}
		if !labelKeyRe.MatchString(c.Key) {
			return Invalid("constraints", fmt.Sprintf("constraint key %q is not a valid label key", c.Key),
				"use letters, digits, '_', '.', '/', '-', up to 63 characters, e.g. zone=eu")
		}
		if len(c.Value) > 256 || strings.ContainsRune(c.Value, 0) {
			return Invalid("constraints", fmt.Sprintf("constraint %s has a value longer than 256 bytes or with a NUL byte", c.Key),
				"use a shorter value")
		}
	}
	return nil
}
