package coordinator

import (
	"context"
	"net/http"
)

// Most handlers read or change one thing in the store and answer with it.
// reply writes that ending once; listed and named are the whole handler
// for the routes that do nothing else, so that the route table says what
// each of them calls.

// reply answers a request with what the store said: err through
// writeError, else v as JSON with status. Most handlers end with it.
func (c *Coordinator) reply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

// nonNil is s, or an empty slice for nil: a list is [] in JSON, never null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// listed is a handler that answers with the list list returns.
func listed[T any](c *Coordinator, list func(ctx context.Context) ([]T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := list(r.Context())
		c.reply(w, r, http.StatusOK, nonNil(v), err)
	}
}

// named is a handler that answers with status and what call returns for the
// route's {key} (a node's, a job's or a volume's name).
func named[T any](c *Coordinator, status int, key string, call func(ctx context.Context, name string) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := call(r.Context(), r.PathValue(key))
		c.reply(w, r, status, v, err)
	}
}

// namedList is named for a list: [] for none.
func namedList[T any](c *Coordinator, key string, call func(ctx context.Context, name string) ([]T, error)) http.HandlerFunc {
	return named(c, http.StatusOK, key, func(ctx context.Context, name string) ([]T, error) {
		v, err := call(ctx, name)
		return nonNil(v), err
	})
}
