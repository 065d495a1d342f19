package main

import "testing"

// TestBenchCmd_QuickDefaultsYieldToExplicitFlags checks the wiring of
// `orch bench --quick`: the flags the user did not give take the quick
// values, and those given keep theirs.
func TestBenchCmd_QuickDefaultsYieldToExplicitFlags(t *testing.T) {
	cmd := newBenchCmd()
	if err := cmd.ParseFlags([]string{"--quick", "--agents", "7", "--idle-agents", "0,5"}); err != nil {
		t.Fatal(err)
	}
	if err := quickDefaults(cmd.Flags()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"agents": "7", "idle-agents": "0,5", // given
		"tasks": "1000", "latency-agents": "1,10", "idle-window": "3s", "process-held": "20", "docker-runs": "3", // quick
		"strategy": "spread", "latency-rate": "50", // the same either way
	} {
		if got := cmd.Flags().Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}
