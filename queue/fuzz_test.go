package queue

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds every line of the shared size corpus as a seed.
func addSeeds(f *testing.F) {
	file, err := os.Open(filepath.Join("..", "testdata", "fuzz", "sizes", "values.txt"))
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
}

func FuzzParseBytes(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseBytes(%q) = %d: a size is never negative", s, n)
		}
	})
}

func FuzzParseCPU(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseCPU(s)
		if err == nil && (n < 0 || n > MaxCPUMillis*10) {
			t.Fatalf("ParseCPU(%q) = %d: out of range", s, n)
		}
	})
}

// Constraints come from the API (as strings or objects) and the CLI.
func FuzzConstraint(f *testing.F) {
	for _, s := range []string{"zone=eu", "gpu!=none", `{"key":"zone","op":"=","value":"eu"}`, `"a=b"`, "==", "!=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConstraint(s)
		if err == nil && c.Op != OpEqual && c.Op != OpNotEqual {
			t.Fatalf("ParseConstraint(%q) = %+v: unknown op", s, c)
		}
		var j Constraint
		_ = j.UnmarshalJSON([]byte(s)) // must not panic
	})
}

// Durations come from the API (health checks, drains, stop_after_disconnect).
func FuzzDurationJSON(f *testing.F) {
	for _, s := range []string{`"1.5s"`, `"300ms"`, `2`, `-1`, `1e308`, `"x"`, `null`, `""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d Duration
		if err := d.UnmarshalJSON([]byte(s)); err != nil {
			return
		}
		b, err := d.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var again Duration
		if err := again.UnmarshalJSON(b); err != nil || again != d {
			t.Fatalf("%s → %s → %v (%v)", s, b, again, err)
		}
	})
}

// States come from query strings and the seed orchestrator's bodies.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{"running", "RUNNING", " pending ", "2", "nope", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseState(s)
		if err == nil && !st.Valid() {
			t.Fatalf("ParseState(%q) = %q, not a state", s, st)
		}
		var j State
		_ = j.UnmarshalJSON([]byte(s))
	})
}
