package queue

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// State is where a task is in its life. The values are the seed orchestrator's
// (Pending → Scheduled → Running → Completed | Failed) plus two it left
// implicit: Starting, the moment an agent has claimed the task but its
// container is not yet running, and Stopped, a task ended because a user asked.
type State string

const (
	Pending   State = "pending"
	Scheduled State = "scheduled"
	Starting  State = "starting"
	Running   State = "running"
	Completed State = "completed"
	Failed    State = "failed"
	Stopped   State = "stopped"
)

// AllStates lists every state in life-cycle order.
var AllStates = []State{Pending, Scheduled, Starting, Running, Completed, Failed, Stopped}

// seedStates maps the seed's integer enum (task.State in the book) onto ours.
var seedStates = map[int]State{0: Pending, 1: Scheduled, 2: Running, 3: Completed, 4: Failed}

// Terminal reports whether no further transition can leave s.
func (s State) Terminal() bool {
	return s == Completed || s == Failed || s == Stopped
}

// Live reports whether a task in s holds resources on a node.
func (s State) Live() bool {
	return s == Scheduled || s == Starting || s == Running
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, k := range AllStates {
		if k == s {
			return true
		}
	}
	return false
}

// ParseState accepts a state name in any case, or the seed's integer form.
func ParseState(v string) (State, error) {
	s := State(strings.ToLower(strings.TrimSpace(v)))
	if s.Valid() {
		return s, nil
	}
	return "", fmt.Errorf("%w: unknown state %q", ErrInvalid, v)
}

// UnmarshalJSON accepts either a state name or the seed's integer enum.
func (s *State) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		st, ok := seedStates[n]
		if !ok {
			return fmt.Errorf("%w: unknown state %d", ErrInvalid, n)
		}
		*s = st
		return nil
	}
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		// A type error, so that a JSON decoder names the field.
		return &json.UnmarshalTypeError{Value: "non-state value", Type: reflect.TypeFor[string]()}
	}
	st, err := ParseState(name)
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// DesiredState is what the user wants a task to be doing; agents converge the
// actual State towards it.
type DesiredState string

const (
	DesiredRunning DesiredState = "running"
	DesiredStopped DesiredState = "stopped"
)
