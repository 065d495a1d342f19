package coordinator

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/orchd/orch/queue"
)

// FuzzDecodeTask feeds the API's task decoder arbitrary bodies: it must never
// panic, must refuse with a FieldError or ErrTooLarge, and whatever it accepts
// must pass validation.
func FuzzDecodeTask(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("..", "testdata", "fuzz", "tasks", "*.json"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed corpus: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
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
