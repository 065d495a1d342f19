package queue

import "fmt"

// transitions is the one place that says which state changes are legal. Every
// write of a task's state in the store goes through CheckTransition, and the
// SQL that moves tasks in bulk names its source states from this table too.
var transitions = map[State][]State{
	// A pending task is placed, or stopped before it was ever placed.
	Pending: {Scheduled, Stopped, Failed},
	// A scheduled task is claimed by its agent, sent back to pending when its
	// node is lost, or stopped before its agent claimed it.
	Scheduled: {Starting, Pending, Stopped, Failed},
	// A starting task's container starts or fails to; a lost node sends it back.
	Starting: {Running, Failed, Stopped, Pending},
	// A running task ends, is stopped, or goes back to pending when its node is
	// lost or its restart policy replaces it, or to scheduled for a restart in place.
	Running: {Completed, Failed, Stopped, Pending, Scheduled},
}

// CanTransition reports whether a task may move from one state to another.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// CheckTransition returns an error wrapping ErrInvalidTransition when the
// change from → to is not allowed.
func CheckTransition(from, to State) error {
	if !from.Valid() || !to.Valid() {
		return fmt.Errorf("%w: unknown state in %q → %q", ErrInvalidTransition, from, to)
	}
	if !CanTransition(from, to) {
		return fmt.Errorf("%w: %s → %s", ErrInvalidTransition, from, to)
	}
	return nil
}

// Sources lists the states from which a task may move to to.
func Sources(to State) []State {
	var out []State
	for _, from := range AllStates {
		if CanTransition(from, to) {
			out = append(out, from)
		}
	}
	return out
}
