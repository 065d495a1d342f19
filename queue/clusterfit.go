package queue

import (
	"fmt"
	"strings"
)

// ClusterFit is what the cluster's nodes, down and cordoned ones included,
// could ever offer one task: whether any node's whole capacity holds a
// request, and the largest capacity per dimension.
type ClusterFit struct {
	Nodes   int
	Fits    bool
	Largest Resources
}

// Warning says why no node could ever hold r, or "" when one could (or the
// cluster has no node yet, which says nothing about the nodes to come).
// Such a task is accepted, as a node that large may join, but it waits
// until then.
func (f ClusterFit) Warning(r Resources) string {
	if f.Fits || f.Nodes == 0 {
		return ""
	}
	var short []string
	if r.CPUMillis > f.Largest.CPUMillis {
		short = append(short, fmt.Sprintf("%s cores (the most a node has: %s)", FormatCPU(r.CPUMillis), FormatCPU(f.Largest.CPUMillis)))
	}
	if r.MemoryBytes > f.Largest.MemoryBytes {
		short = append(short, fmt.Sprintf("%s of memory (the most a node has: %s)", FormatBytes(r.MemoryBytes), FormatBytes(f.Largest.MemoryBytes)))
	}
	if r.DiskBytes > f.Largest.DiskBytes {
		short = append(short, fmt.Sprintf("%s of disk (the most a node has: %s)", FormatBytes(r.DiskBytes), FormatBytes(f.Largest.DiskBytes)))
	}
	what := "no single node has all it asks for together"
	if len(short) > 0 {
		what = "it asks for " + strings.Join(short, " and ")
	}
	return fmt.Sprintf("no node of the %d in the cluster could ever hold this task: %s; it stays pending until a node that large joins", f.Nodes, what)
}
