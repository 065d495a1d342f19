package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/queue"
)

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "List and manage the nodes agents run on"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List nodes with capacity and what is reserved",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			nodes, err := client.ListNodes(cmd.Context())
			if err != nil {
				return err
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), nodes)
			}
			tb := newTable(cmd.OutOrStdout(), "NAME", "ID", "STATE", "CPU", "MEMORY", "DISK", "TASKS", "HEARTBEAT")
			for _, n := range nodes {
				tb.row(n.Name, n.ID.String(), nodeState(n),
					queue.FormatCPU(n.Reserved.CPUMillis)+"/"+queue.FormatCPU(n.Capacity.CPUMillis),
					queue.FormatBytes(n.Reserved.MemoryBytes)+"/"+queue.FormatBytes(n.Capacity.MemoryBytes),
					queue.FormatBytes(n.Reserved.DiskBytes)+"/"+queue.FormatBytes(n.Capacity.DiskBytes),
					strconv.Itoa(n.LiveTasks), age(n.LastHeartbeat)+" ago")
			}
			return tb.flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "get NODE",
		Short: "Show one node: capacity, reserved, used, and its recent stats",
		Args:  exactArgs(1, "give the node's name or id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			d, err := client.NodeStats(cmd.Context(), args[0], 10)
			if err != nil {
				return err
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), d)
			}
			if err := printNode(cmd.OutOrStdout(), d.Node); err != nil {
				return err
			}
			return printNodeStats(cmd.OutOrStdout(), d.Stats)
		},
	})
	for _, on := range []bool{true, false} {
		verb, short := "uncordon", "Let a node take new tasks again"
		if on {
			verb, short = "cordon", "Stop placing new tasks on a node (running ones stay)"
		}
		cmd.AddCommand(&cobra.Command{
			Use:   verb + " NODE",
			Short: short,
			Args:  exactArgs(1, "give the node's name or id"),
			RunE: func(cmd *cobra.Command, args []string) error {
				client, cc, err := clientFor(cmd)
				if err != nil {
					return err
				}
				n, err := client.Cordon(cmd.Context(), args[0], on)
				if err != nil {
					return err
				}
				if cc.Output == "json" {
					return printJSON(cmd.OutOrStdout(), n)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", n.Name, nodeState(n))
				return nil
			},
		})
	}
	cmd.AddCommand(newNodeDrainCmd(), newNodeTokenCmd())
	return cmd
}

func nodeState(n queue.Node) string {
	s := string(n.State)
	switch {
	case n.Draining && n.LiveTasks == 0:
		s += ",drained"
	case n.Draining:
		s += ",draining"
	case n.Cordoned:
		s += ",cordoned"
	}
	return s
}

func printNode(w io.Writer, n queue.Node) error {
	labels := make([]string, 0, len(n.Labels))
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	tb := newTable(w, "FIELD", "VALUE")
	for _, kv := range [][2]string{
		{"name", n.Name}, {"id", n.ID.String()}, {"state", nodeState(n)}, {"labels", orDash(strings.Join(labels, ","))},
		{"cpu", queue.FormatCPU(n.Reserved.CPUMillis) + " of " + queue.FormatCPU(n.Capacity.CPUMillis) + " cores reserved"},
		{"memory", queue.FormatBytes(n.Reserved.MemoryBytes) + " of " + queue.FormatBytes(n.Capacity.MemoryBytes) + " reserved"},
		{"disk", queue.FormatBytes(n.Reserved.DiskBytes) + " of " + queue.FormatBytes(n.Capacity.DiskBytes) + " reserved"},
		{"live tasks", strconv.Itoa(n.LiveTasks)}, {"last heartbeat", age(n.LastHeartbeat) + " ago"},
	} {
		tb.row(kv[0], kv[1])
	}
	if n.HealthError != "" {
		tb.row("unhealthy because", n.HealthError)
	}
	if n.Draining && n.DrainDeadline != nil {
		tb.row("drain deadline", n.DrainDeadline.Format(time.RFC3339))
	}
	for _, kv := range usageRows(n.Usage) {
		tb.row(kv[0], kv[1])
	}
	return tb.flush()
}
