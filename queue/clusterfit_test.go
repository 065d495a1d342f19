package queue

import (
	"strings"
	"testing"
)

func TestClusterFit_Warning(t *testing.T) {
	largest := Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30}
	for _, tc := range []struct {
		name string
		fit  ClusterFit
		req  Resources
		want []string // in the warning; none: no warning
	}{
		{"a node fits", ClusterFit{Nodes: 2, Fits: true, Largest: largest}, Resources{CPUMillis: 1000}, nil},
		{"no nodes yet", ClusterFit{}, Resources{CPUMillis: 64000}, nil},
		{"too much memory", ClusterFit{Nodes: 3, Largest: largest}, Resources{MemoryBytes: 100 << 30},
			[]string{"no node of the 3", "100GiB of memory (the most a node has: 4GiB)", "stays pending"}},
		{"too much CPU and disk", ClusterFit{Nodes: 1, Largest: largest}, Resources{CPUMillis: 64000, DiskBytes: 1 << 40},
			[]string{"64 cores (the most a node has: 2)", "1TiB of disk"}},
		{"each fits somewhere, not together", ClusterFit{Nodes: 2, Largest: largest}, Resources{CPUMillis: 2000, MemoryBytes: 4 << 30},
			[]string{"no single node has all it asks for together"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.fit.Warning(tc.req)
			if len(tc.want) == 0 {
				if got != "" {
					t.Fatalf("warning %q, want none", got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("warning %q lacks %q", got, w)
				}
			}
		})
	}
}
