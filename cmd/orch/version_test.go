package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestCLI_CompletionForEachShell_VersionAsStamped(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "bash completion V2 for orch", "zsh": "#compdef orch", "fish": "complete -c orch"} {
		out, err := exec.Command(orchBin, "completion", shell).CombinedOutput()
		if err != nil || !strings.Contains(string(out), marker) {
			t.Errorf("orch completion %s: %v; output lacks %q:\n%.300s", shell, err, marker, out)
		}
	}
	out, err := exec.Command(orchBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "orch ") || !strings.Contains(string(out), "commit ") {
		t.Errorf("orch version: %v\n%s", err, out)
	}
	// Release builds stamp the version and commit at link time.
	version, commit = "v1.2.3", "0123abc"
	defer func() { version, commit = "", "" }()
	var b bytes.Buffer
	cmd := newRoot()
	cmd.SetOut(&b)
	cmd.SetArgs([]string{"version"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "orch v1.2.3\ncommit 0123abc\n") {
		t.Errorf("stamped version:\n%s", b.String())
	}
}
