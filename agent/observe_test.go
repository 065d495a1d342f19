package agent

import "testing"

func TestCPUPercent_InPercentOfOneCore_ZeroWhenCountersGoBack(t *testing.T) {
	prev := ContainerStats{CPUNanos: 1e9, SystemNanos: 100e9, OnlineCPUs: 4}
	cur := ContainerStats{CPUNanos: 4e9, SystemNanos: 108e9, OnlineCPUs: 4}
	// 3 s of CPU over 8 s of all four cores (2 s of wall time): 1.5 cores.
	if p := cpuPercent(prev, cur); p != 150 {
		t.Errorf("cpuPercent = %v, want 150", p)
	}
	if p := cpuPercent(cur, prev); p != 0 {
		t.Errorf("counters going back: %v, want 0", p)
	}
}
