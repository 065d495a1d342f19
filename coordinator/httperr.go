package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/orchd/orch/queue"
)

// ErrorBody is every API error's JSON: what went wrong, in which field, and how to fix it.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Hint  string `json:"hint,omitempty"`
}

// statusOf is the one table from orch's error sentinels to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrBatchTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, queue.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, queue.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, queue.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, queue.ErrConflict), errors.Is(err, queue.ErrInvalidTransition):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (c *Coordinator) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	body := ErrorBody{Error: err.Error()}
	var fe *queue.FieldError
	var ie *queue.ItemError
	switch {
	case errors.As(err, &ie):
		// One element of an array: its index is the field, or comes
		// before it.
		body = ErrorBody{Error: ie.Err.Error(), Field: fmt.Sprintf("[%d]", ie.Index)}
		if errors.As(ie.Err, &fe) {
			body = ErrorBody{Error: fe.Message, Field: body.Field + "." + fe.Field, Hint: fe.Hint}
		}
	case errors.As(err, &fe):
		body = ErrorBody{Error: fe.Message, Field: fe.Field, Hint: fe.Hint}
	}
	if status == http.StatusInternalServerError {
		c.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		body = ErrorBody{Error: "internal error: " + err.Error()}
	}
	writeJSON(w, status, body)
}
