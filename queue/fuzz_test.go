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
