package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "List and manage the nodes agents run on"}
	cmd.AddCommand(readingCmd(command("list", "List nodes with capacity and what is reserved", cobra.NoArgs),
		listing((*coordinator.Client).ListNodes), func(w io.Writer, _ []string, nodes []queue.Node) error {
			tb := newTable(w, "NAME", "ID", "STATE", "CPU", "MEMORY", "DISK", "TASKS", "HEARTBEAT")
			for _, n := range nodes {
				tb.row(n.Name, n.ID.String(), nodeState(n),
					queue.FormatCPU(n.Reserved.CPUMillis)+"/"+queue.FormatCPU(n.Capacity.CPUMillis),
					queue.FormatBytes(n.Reserved.MemoryBytes)+"/"+queue.FormatBytes(n.Capacity.MemoryBytes),
					queue.FormatBytes(n.Reserved.DiskBytes)+"/"+queue.FormatBytes(n.Capacity.DiskBytes),
					strconv.Itoa(n.LiveTasks), age(n.LastHeartbeat)+" ago")
			}
			return tb.flush()
		}))
	cmd.AddCommand(readingCmd(command("get NODE", "Show one node: capacity, reserved, used, and its recent stats", nodeArg),
		func(cmd *cobra.Command, client *coordinator.Client, args []string) (coordinator.NodeDetail, error) {
			return client.NodeStats(cmd.Context(), args[0], 10)
		}, func(w io.Writer, _ []string, d coordinator.NodeDetail) error {
			if err := printNode(w, d.Node); err != nil {
				return err
			}
			return printNodeStats(w, d.Stats)
		}))
	for _, on := range []bool{true, false} {
		verb, short := "uncordon", "Let a node take new tasks again"
		if on {
			verb, short = "cordon", "Stop placing new tasks on a node (running ones stay)"
		}
		cmd.AddCommand(readingCmd(command(verb+" NODE", short, nodeArg),
			func(cmd *cobra.Command, client *coordinator.Client, args []string) (queue.Node, error) {
				return client.Cordon(cmd.Context(), args[0], on)
			}, line("%s\t%s\n", func(n queue.Node) []any { return []any{n.Name, nodeState(n)} })))
	}
	cmd.AddCommand(newNodeDrainCmd(), newNodeTokenCmd())
	return cmd
}

// nodeArg is the argument of the commands about one node.
var nodeArg = exactArgs(1, "give the node's name or id")

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

func newNodeDrainCmd() *cobra.Command {
	var deadline, timeout time.Duration
	var detach bool
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Move every task off a node: no new work, its tasks go to other nodes, then it is idle",
		Long: `orch node drain cordons the node (it gets no new work) and has its agent stop its tasks, each
with its stop grace, and hand them to the queue, from where they are placed on other nodes (a move,
not a restart: it does not count against --max-restarts). Whatever is still on the node when the
deadline passes (its agent is gone, say) is moved at once; --deadline 0 moves everything at once.
The command waits until the node is idle unless --detach is given. orch node uncordon ends a drain.`,
		Example: `  orch node drain worker-3
  orch node drain worker-3 --deadline 5m
  orch node uncordon worker-3`,
		Args: nodeArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if deadline < 0 {
				return queue.Invalid("deadline", "the deadline must not be negative", "e.g. --deadline 5m, or 0 to move everything at once")
			}
			client, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			n, err := client.Drain(cmd.Context(), args[0], deadline)
			if err != nil {
				return err
			}
			if !detach {
				if n, err = waitDrained(cmd.Context(), client, cmd.ErrOrStderr(), n, deadline+timeout); err != nil {
					return err
				}
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%d tasks\n", n.Name, nodeState(n), n.LiveTasks)
			return nil
		},
	}
	cmd.Flags().DurationVar(&deadline, "deadline", coordinator.DefaultDrainDeadline, "time the agent has to hand its tasks over before the rest are moved at once")
	cmd.Flags().BoolVar(&detach, "detach", false, "return at once instead of waiting until the node is idle")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait past the deadline")
	return cmd
}

// waitDrained polls the node until it holds no task, showing how many are left.
func waitDrained(ctx context.Context, c *coordinator.Client, w io.Writer, n queue.Node, limit time.Duration) (queue.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	last := -1
	for {
		if n.LiveTasks != last {
			fmt.Fprintf(w, "node %s: %d tasks left\n", n.Name, n.LiveTasks)
			last = n.LiveTasks
		}
		if n.LiveTasks == 0 {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("gave up waiting for node %s to drain after %s: %d tasks left", n.Name, limit, n.LiveTasks)
		case <-time.After(250 * time.Millisecond):
		}
		var err error
		if n, err = c.GetNode(ctx, n.ID.String()); err != nil {
			if ctx.Err() != nil {
				return n, fmt.Errorf("gave up waiting for node %s to drain after %s", n.Name, limit)
			}
			return n, err
		}
	}
}

// newNodeTokenCmd makes the database role an agent connects with. It talks to
// Postgres directly, as the schema's owner: creating roles is not something
// the API offers.
func newNodeTokenCmd() *cobra.Command {
	var revoke, privileged bool
	var maxCPU, maxMemory, maxDisk string
	cmd := &cobra.Command{
		Use:   "token NODE",
		Short: "Create (or rotate) the database role of NODE's agent and print how the agent connects",
		Long: `orch node token creates a PostgreSQL role that may act as NODE and nothing else: row-level
security lets it read and change only that node's row, the tasks placed on it and its own stats
and logs. Run it with the database URL of the schema's owner (--database-url / ORCH_DATABASE_URL);
give the printed URL to the agent as its ORCH_DATABASE_URL, and start it with --name NODE.
The node may offer at most --max-cpu, --max-memory and --max-disk (by default, what it offers
when it first registers); only with --allow-privileged may it run privileged containers.
Running it again gives the role a new password (and sets the limits given); --revoke drops the role.`,
		Args: exactArgs(1, "give the node's name, as its agent registers it (--name)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, url, err := databaseURL(cmd)
			if err != nil {
				return err
			}
			store, err := postgres.Open(cmd.Context(), url)
			if err != nil {
				return err
			}
			defer store.Close()
			if revoke {
				if err := store.DropAgentRole(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "dropped the role of node %s\n", args[0])
				return nil
			}
			var limits postgres.AgentRoleLimits
			limits.AllowPrivileged = privileged
			if maxCPU != "" {
				if limits.Capacity.CPUMillis, err = queue.ParseCPU(maxCPU); err != nil {
					return queue.Invalid("max-cpu", err.Error(), "give cores like 8 or millicores like 7500m")
				}
			}
			if maxMemory != "" {
				if limits.Capacity.MemoryBytes, err = queue.ParseBytes(maxMemory); err != nil {
					return queue.Invalid("max-memory", err.Error(), "give a size like 32GiB")
				}
			}
			if maxDisk != "" {
				if limits.Capacity.DiskBytes, err = queue.ParseBytes(maxDisk); err != nil {
					return queue.Invalid("max-disk", err.Error(), "give a size like 500GiB")
				}
			}
			role, err := store.CreateAgentRole(cmd.Context(), args[0], limits)
			if err != nil {
				return err
			}
			if v.GetString(config.KeyOutput) == "json" {
				return printJSON(cmd.OutOrStdout(), role)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "role %s may act as node %s only\n\nstart its agent with:\n  ORCH_DATABASE_URL='%s' orch agent --name %s\n",
				role.Role, role.Node, role.DatabaseURL, role.Node)
			return nil
		},
	}
	cmd.Flags().String(config.KeyDatabaseURL, "", "PostgreSQL URL of the schema's owner (env ORCH_DATABASE_URL)")
	cmd.Flags().BoolVar(&revoke, "revoke", false, "drop the node's role instead")
	cmd.Flags().StringVar(&maxCPU, "max-cpu", "", "the most CPU the node may offer (default: what it first registers with)")
	cmd.Flags().StringVar(&maxMemory, "max-memory", "", "the most memory the node may offer")
	cmd.Flags().StringVar(&maxDisk, "max-disk", "", "the most disk the node may offer")
	cmd.Flags().BoolVar(&privileged, "allow-privileged", false, "let the node run privileged and host-network containers (its agent must also be started with --allow-privileged)")
	return cmd
}

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
