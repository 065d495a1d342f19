package queue

import (
	"errors"
	"fmt"
)

// Sentinel errors. Adapters translate their own errors into these, and the
// HTTP and CLI edges map them to a status code or exit code in one table each.
var (
	ErrNotFound          = errors.New("not found")
	ErrConflict          = errors.New("conflict")
	ErrInvalid           = errors.New("invalid input")
	ErrInvalidTransition = errors.New("invalid state transition")
	// ErrNotOwner means a fenced write named an attempt or node that no longer
	// owns the task: the writer must stop acting on it.
	ErrNotOwner = errors.New("task is no longer owned by this attempt")
	// ErrForbidden means the database refused the caller's role: an agent
	// acting beyond its node, or a user without the privileges asked for.
	ErrForbidden = errors.New("forbidden")
)

// FieldError is bad input in one named field, with a hint for fixing it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"error"`
	Hint    string `json:"hint,omitempty"`
}

func (e *FieldError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Field, e.Message, e.Hint)
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Message)
}

// Unwrap makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid builds a FieldError.
func Invalid(field, message, hint string) error {
	return &FieldError{Field: field, Message: message, Hint: hint}
}

// ItemError is an error about one element of a batch (a POST /tasks with an
// array, postgres.Store.CreateTasks): its index, from 0, and what is wrong
// with it. It wraps that error, so errors.Is sees the sentinel.
type ItemError struct {
	Index int
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("[%d]: %v", e.Index, e.Err) }

// Unwrap returns the element's own error.
func (e *ItemError) Unwrap() error { return e.Err }
