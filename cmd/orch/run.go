package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

// Exit codes of orch task run and orch task create --wait=exit besides the
// task's own, as docker run has them.
const (
	// ExitCouldNotStart is a task that ended without running its command:
	// its image could not be pulled, its container not be created, …
	ExitCouldNotStart = 125
	// ExitInterrupted is a run that the user interrupted (128 + SIGINT).
	ExitInterrupted = 130
)

// exitError ends the CLI with code, saying msg (when not empty) on stderr.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// taskExit is how a command that waited for t to end exits: with its exit
// code, or non-zero with the reason it did not run.
func taskExit(t queue.Task) error {
	switch {
	case t.State == queue.Completed && (t.ExitCode == nil || *t.ExitCode == 0):
		return nil
	case t.State == queue.Stopped:
		return exitError{code: 1, msg: fmt.Sprintf("task %s was stopped", t.Name)}
	case t.ExitCode != nil:
		code := *t.ExitCode
		if code <= 0 || code > 255 {
			code = 1
		}
		msg := fmt.Sprintf("task %s exited with code %d", t.Name, *t.ExitCode)
		if t.Error != "" {
			msg += ": " + t.Error
		}
		return exitError{code: code, msg: msg}
	}
	why := t.Error
	if why == "" {
		why = "no reason recorded"
	}
	return exitError{code: ExitCouldNotStart, msg: fmt.Sprintf("task %s could not start: %s", t.Name, why)}
}

func newTaskRunCmd() *cobra.Command {
	var (
		tf taskFlags
		rm bool
	)
	cmd := &cobra.Command{
		Use:   "run --image IMAGE [flags] [-- COMMAND [ARGS...]]",
		Short: "Run a task to its end: submit it, stream its output, exit with its exit code",
		Long: `orch task run submits a task as orch task create does (same flags), streams its output as it
comes (stdout to stdout, stderr to stderr) and exits with the task's exit code once it
ends: 0 when it completed, its exit code when it failed, 125 with the reason when it
could not start (an image that cannot be pulled, …), 1 when it was stopped.

Ctrl-C asks whether to stop the task (on a terminal; elsewhere the task keeps running).
With --rm, Ctrl-C stops it without asking, and the task's records (events, logs) are
deleted once it has ended, as docker run --rm removes its container.`,
		Example: `  orch task run --image orch-workload:dev -- -logs 3 -exit 0
  orch task run --rm --image alpine:3.20 -- sh -c 'echo hello; exit 3'; echo $?`,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, cc, created, err := tf.submit(cmd, args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			t := created.Task
			id := t.ID.String()
			fmt.Fprintf(errOut, "orch: task %s (%s) submitted\n", t.Name, t.ID)
			if len(created.Warnings) > 0 {
				// It would wait for a node that is not there.
				return fmt.Errorf("task %s: %s (orch task delete %s drops it)", t.Name, strings.Join(created.Warnings, "; "), t.Name)
			}
			watchCtx, stopWatch := context.WithCancel(ctx)
			watched := make(chan struct{})
			go func() { defer close(watched); watchStart(watchCtx, client, errOut, id) }()
			err = client.FollowLogs(ctx, id, coordinator.LogOptions{}, printFrames(out, errOut, cc.Output == "json", false, false))
			stopWatch()
			<-watched
			if ctx.Err() != nil {
				return interrupted(cmd, client, t, rm)
			}
			if err != nil {
				return err
			}
			d, err := client.GetTask(ctx, id)
			if err != nil {
				return err
			}
			if rm {
				if err := client.PurgeTask(context.WithoutCancel(ctx), id); err != nil {
					fmt.Fprintf(errOut, "orch: deleting the records of task %s: %v\n", t.Name, err)
				}
			}
			return taskExit(d.Task)
		},
	}
	tf.register(cmd.Flags())
	cmd.Flags().BoolVar(&rm, "rm", false, "delete the task's records once it has ended; Ctrl-C stops it without asking")
	return cmd
}

// watchStart tells on w how the task gets to run (pending and why,
// scheduled, starting), until it runs or ends or ctx ends.
func watchStart(ctx context.Context, c *coordinator.Client, w io.Writer, id string) {
	last := ""
	for {
		d, err := c.GetTask(ctx, id)
		if err == nil {
			t := d.Task
			if t.State == queue.Running || t.State.Terminal() {
				return
			}
			line := fmt.Sprintf("orch: task %s: %s", t.Name, t.State)
			if t.NodeName != "" {
				line += " on " + t.NodeName
			}
			if t.Reason != "" {
				line += " (" + t.Reason + ")"
			}
			if line != last {
				fmt.Fprintln(w, line)
				last = line
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// interrupted handles Ctrl-C during orch task run: it stops the task when
// --rm says so or the user says yes, and otherwise leaves it running.
func interrupted(cmd *cobra.Command, c *coordinator.Client, t queue.Task, rm bool) error {
	// A second Ctrl-C ends orch at once.
	signal.Reset(os.Interrupt)
	errOut := cmd.ErrOrStderr()
	fmt.Fprintln(errOut)
	stop := rm
	if !rm && isTerminal(cmd.InOrStdin()) && isTerminal(errOut) {
		fmt.Fprintf(errOut, "Stop task %s? [y/N] ", t.Name)
		answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		stop = strings.HasPrefix(strings.ToLower(strings.TrimSpace(answer)), "y")
	}
	id := t.ID.String()
	if !stop {
		return exitError{code: ExitInterrupted, msg: fmt.Sprintf("task %s keeps running: orch task logs -f %s follows it, orch task delete %s stops it", t.Name, id, id)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.DeleteTask(ctx, id); err != nil {
		return fmt.Errorf("stopping task %s: %w", t.Name, err)
	}
	if _, err := waitFor(ctx, c, io.Discard, id, 2*time.Minute, func(t queue.Task) bool { return t.State.Terminal() }); err != nil {
		return err
	}
	if rm {
		if err := c.PurgeTask(ctx, id); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return fmt.Errorf("deleting the records of task %s: %w", t.Name, err)
		}
	}
	return exitError{code: ExitInterrupted, msg: fmt.Sprintf("task %s stopped", t.Name)}
}
