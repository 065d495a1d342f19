package coordinator

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/orchd/orch/queue"
)

// taskSeeds is the seed corpus of the task decoders' fuzz tests, in
// testdata/fuzz/tasks.
func taskSeeds(f *testing.F) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "fuzz", "tasks", "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seed corpus: %v", err)
	}
	seeds := make([][]byte, len(paths))
	for i, p := range paths {
		if seeds[i], err = os.ReadFile(p); err != nil {
			f.Fatal(err)
		}
	}
	return seeds
}

// FuzzDecodeTask feeds the API's task decoder arbitrary bodies: it must never
// panic, must refuse with a FieldError or ErrTooLarge, and whatever it accepts
// must pass validation.
func FuzzDecodeTask(f *testing.F) {
	for _, b := range taskSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, spec, err := DecodeTask(bytes.NewReader(body))
		if err != nil {
			var fe *queue.FieldError
			if !errors.As(err, &fe) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("refusal is not a FieldError: %T %v", err, err)
			}
			if statusOf(err) != 400 && statusOf(err) != 413 {
				t.Fatalf("refusal maps to %d", statusOf(err))
			}
			return
		}
		if verr := spec.Validate(); verr != nil {
			t.Fatalf("accepted a spec that does not validate: %v", verr)
		}
	})
}

// FuzzDecodeTasks feeds the decoder of POST /tasks arbitrary bodies, the
// seeds alone and in arrays: it must never panic, must refuse with a field
// error naming the element (or 413), must accept only valid specs, and
// must read a body that is no array as DecodeTask does.
func FuzzDecodeTasks(f *testing.F) {
	for _, b := range taskSeeds(f) {
		f.Add(b)
		f.Add([]byte("[" + string(b) + "]"))
		f.Add([]byte("[" + string(b) + ", " + string(b) + "]"))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tasks, array, err := DecodeTasks(bytes.NewReader(body))
		if !array {
			_, spec, serr := DecodeTask(bytes.NewReader(body))
			if (err == nil) != (serr == nil) || err == nil && !reflect.DeepEqual(tasks[0].Spec, spec) {
				t.Fatalf("a body that is no array: DecodeTasks %v, DecodeTask %v", err, serr)
			}
		}
		if err != nil {
			var fe *queue.FieldError
			var ie *queue.ItemError
			if !errors.As(err, &fe) && !errors.As(err, &ie) && !errors.Is(err, ErrBatchTooLarge) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("refusal is not a field error: %T %v", err, err)
			}
			if statusOf(err) != 400 && statusOf(err) != 413 {
				t.Fatalf("refusal maps to %d", statusOf(err))
			}
			if array && fe != nil && fe.Field != "body" && !strings.HasPrefix(fe.Field, "[") {
				t.Fatalf("refusal of an array names field %q, not an element", fe.Field)
			}
			return
		}
		for i, tk := range tasks {
			if verr := tk.Spec.Validate(); verr != nil {
				t.Fatalf("accepted task [%d] that does not validate: %v", i, verr)
			}
		}
	})
}

// The Authorization header is the first thing an attacker controls.
func FuzzPresentedToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "Basic dXNlcjpwYXNz", "Basic !!!", "Basic " + "Og==", "", "bearer x", "Basic dXNlcg=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		tok, basic := presentedToken(r)
		if basic && !strings.HasPrefix(h, "Basic ") {
			t.Fatalf("%q read as Basic", h)
		}
		if tok != "" && !strings.HasPrefix(h, "Bearer ") && !basic {
			t.Fatalf("%q gave token %q", h, tok)
		}
	})
}

// A drain's body is parsed strictly.
func FuzzDecodeDrain(f *testing.F) {
	for _, s := range []string{`{}`, `{"deadline":"1m"}`, `{"deadline":5}`, `{"deadline":"x"}`, `{"x":1}`, `[`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var req DrainRequest
		if err := strict([]byte(body), &req); err == nil && req.Deadline != nil && *req.Deadline < 0 {
			return // a negative deadline is the handler's to refuse
		}
	})
}
