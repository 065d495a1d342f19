package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/orchd/orch/agent/dockertest"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

// orchBin is the orch binary the end-to-end tests run, built once.
var orchBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orch-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	orchBin = filepath.Join(dir, "orch")
	build := exec.Command("go", "build", "-o", orchBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building orch:", err)
		os.Exit(1)
	}
	// pgtest.Main exits: the directory goes with its clean-up, not in a defer.
	pgtest.Main(m, dockertest.Cleanup, func() { os.RemoveAll(dir) })
}
