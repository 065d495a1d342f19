package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

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
		Args: exactArgs(1, "give the node's name or id"),
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
