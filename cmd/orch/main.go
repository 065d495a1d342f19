// Command orch is the one binary of the orch container orchestrator: the
// coordinator, the agent, the CLI and a single-machine dev cluster.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/orchd/orch/queue"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRoot().ExecuteContext(ctx)
	os.Exit(exitCode(err))
}

// usageError is a mistake in how a command was called, with a hint on
// where to read how to call it.
type usageError struct {
	err  error
	hint string
}

func (e usageError) Error() string {
	if e.hint == "" {
		return e.err.Error()
	}
	return e.err.Error() + "\n" + e.hint
}
func (e usageError) Unwrap() error { return e.err }

// exitCode is the one table from errors to exit codes: 2 for bad input, the
// code an exitError carries (a task's exit code, for a command that waited
// for its end), 1 for everything else that went wrong.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "orch:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "orch:", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, queue.ErrInvalid) {
		return 2
	}
	return 1
}
