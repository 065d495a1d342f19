package main

import (
	"fmt"
	"io"

	"github.com/orchd/orch/queue"
)

// usageRows are printNode's lines about what the node's agent measured.
func usageRows(u queue.Usage) [][2]string {
	if u.At == nil {
		return [][2]string{{"used", "- (no stats reported yet)"}}
	}
	return [][2]string{
		{"cpu used", fmt.Sprintf("%.1f%% of the machine, load %.2f", u.CPUPercent, u.Load1)},
		{"memory used", queue.FormatBytes(u.MemoryUsedBytes)},
		{"disk used", queue.FormatBytes(u.DiskUsedBytes)},
		{"measured", age(*u.At) + " ago"},
	}
}

// printNodeStats prints a node's recent samples, newest first.
func printNodeStats(w io.Writer, stats []queue.NodeSample) error {
	fmt.Fprintln(w, "\nRECENT STATS")
	if len(stats) == 0 {
		fmt.Fprintln(w, "none yet")
		return nil
	}
	tb := newTable(w, "TIME", "CPU", "LOAD1", "MEMORY", "DISK")
	for _, s := range stats {
		tb.row(s.At.Local().Format("15:04:05"), fmt.Sprintf("%.1f%%", s.CPUPercent), fmt.Sprintf("%.2f", s.Load1),
			queue.FormatBytes(s.MemoryUsedBytes)+"/"+queue.FormatBytes(s.MemoryTotalBytes),
			queue.FormatBytes(s.DiskUsedBytes)+"/"+queue.FormatBytes(s.DiskTotalBytes))
	}
	return tb.flush()
}

// taskUsageText is printTask's line about the task's measured usage.
func taskUsageText(u *queue.TaskUsage) string {
	if u == nil {
		return "-"
	}
	lim := "no limit"
	if u.MemoryLimitBytes > 0 {
		lim = "of " + queue.FormatBytes(u.MemoryLimitBytes)
	}
	return fmt.Sprintf("cpu %.1f%% of a core, memory %s %s (%s ago)", u.CPUPercent, queue.FormatBytes(u.MemoryUsedBytes), lim, age(u.At))
}
