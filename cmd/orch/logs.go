package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

func newTaskLogsCmd() *cobra.Command {
	var (
		follow, timestamps, raw bool
		tail                    int
	)
	cmd := &cobra.Command{
		Use:   "logs TASK",
		Short: "Show a task's output (stdout and stderr), as its agent stored it in the database",
		Long: `orch task logs prints what a task's containers wrote, across its attempts, oldest first:
the container's stdout to stdout and its stderr to stderr. The agent keeps a bounded
amount per task (see orch agent --log-max-lines/--log-max-bytes); when older lines
were dropped, a note on stderr says how many.`,
		Example: `  orch task logs 0193...          # everything kept
  orch task logs --tail 20 0193...
  orch task logs --follow 0193... # new lines as they arrive, until the task ends`,
		Args: taskArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tail < 0 {
				return usageError{err: fmt.Errorf("--tail %d: give a number of lines, 0 for all", tail)}
			}
			client, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			asJSON := cc.Output == "json"
			opts := coordinator.LogOptions{Tail: tail}
			if !follow {
				page, err := client.Logs(cmd.Context(), args[0], opts)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(out, page)
				}
				noteDropped(errOut, page.DroppedLines)
				printLogLines(out, errOut, page.Lines, timestamps, raw)
				return nil
			}
			printFrame := printFrames(out, errOut, asJSON, timestamps, raw)
			first := true
			err = client.FollowLogs(cmd.Context(), args[0], opts, func(f coordinator.LogFrame) error {
				if first && !asJSON {
					noteDropped(errOut, f.DroppedLines)
				}
				first = false
				return printFrame(f)
			})
			if cmd.Context().Err() != nil {
				return nil // Ctrl-C ends a follow; that is not a failure
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new lines as they arrive, until the task ends")
	f.IntVar(&tail, "tail", 0, "only the last N lines (0: all that is kept)")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "prefix each line with the time the container wrote it")
	f.BoolVar(&raw, "raw", false, "print the output byte for byte, terminal escape sequences included (for a file or a pipe)")
	return cmd
}

func noteDropped(w io.Writer, n int64) {
	if n > 0 {
		fmt.Fprintf(w, "orch: %d older lines were dropped by the log cap\n", n)
	}
}

// printFrames is the FollowLogs callback that prints each frame's lines:
// one JSON object a line with -o json, else as printLogLines does.
func printFrames(out, errOut io.Writer, asJSON, timestamps, raw bool) func(coordinator.LogFrame) error {
	enc := json.NewEncoder(out)
	return func(f coordinator.LogFrame) error {
		if !asJSON {
			printLogLines(out, errOut, f.Lines, timestamps, raw)
			return nil
		}
		for _, l := range f.Lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
}

// printLogLines prints lines as the container wrote them, but for control
// characters, which printable shows instead of letting them act on the
// terminal; raw prints them as they are (for a file or a pipe).
func printLogLines(out, errOut io.Writer, lines []queue.LogLine, timestamps, raw bool) {
	for _, l := range lines {
		w := out
		if l.Stream == queue.Stderr {
			w = errOut
		}
		text := l.Text
		if !raw {
			text = printable(text)
		}
		if timestamps {
			fmt.Fprintf(w, "%s %s\n", l.At.UTC().Format(time.RFC3339Nano), text)
		} else {
			fmt.Fprintln(w, text)
		}
	}
}
