package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/coordinator"
)

// The shape most of orch's commands share: ask the coordinator for
// something, then print the answer as JSON with -o json or else as a table
// or a line. readingCmd writes that shape once; byName and listing adapt a
// client method to it, and line and printed adapt the printing.

// askFunc is what a command asks the coordinator, given its arguments.
type askFunc[T any] func(cmd *cobra.Command, client *coordinator.Client, args []string) (T, error)

// showFunc prints an answer for a person (-o table).
type showFunc[T any] func(w io.Writer, args []string, v T) error

// clientCmd completes c with run, given the API client and the output
// settings the command's configuration makes.
func clientCmd(c *cobra.Command, run func(cmd *cobra.Command, client *coordinator.Client, cc config.Client, args []string) error) *cobra.Command {
	c.RunE = func(cmd *cobra.Command, args []string) error {
		client, cc, err := clientFor(cmd)
		if err != nil {
			return err
		}
		return run(cmd, client, cc, args)
	}
	return c
}

// readingCmd completes c, a command that asks the coordinator for something
// and shows it: as JSON with -o json, else as show prints it.
func readingCmd[T any](c *cobra.Command, ask askFunc[T], show showFunc[T]) *cobra.Command {
	return clientCmd(c, func(cmd *cobra.Command, client *coordinator.Client, cc config.Client, args []string) error {
		v, err := ask(cmd, client, args)
		if err != nil {
			return err
		}
		return output(cmd.OutOrStdout(), cc, args, v, show)
	})
}

// output prints v as JSON with -o json, else as show prints it.
func output[T any](w io.Writer, cc config.Client, args []string, v T, show showFunc[T]) error {
	if cc.Output == "json" {
		return printJSON(w, v)
	}
	return show(w, args, v)
}

// byName asks with a client method that takes the command's one argument
// (a NAME, an id), e.g. byName((*coordinator.Client).JobStatus).
func byName[T any](call func(*coordinator.Client, context.Context, string) (T, error)) askFunc[T] {
	return func(cmd *cobra.Command, client *coordinator.Client, args []string) (T, error) {
		return call(client, cmd.Context(), args[0])
	}
}

// listing asks with a client method that takes no argument, e.g.
// listing((*coordinator.Client).ListNodes).
func listing[T any](call func(*coordinator.Client, context.Context) (T, error)) askFunc[T] {
	return func(cmd *cobra.Command, client *coordinator.Client, _ []string) (T, error) {
		return call(client, cmd.Context())
	}
}

// printed shows an answer with a print function that cannot fail.
func printed[T any](p func(w io.Writer, v T)) showFunc[T] {
	return func(w io.Writer, _ []string, v T) error {
		p(w, v)
		return nil
	}
}

// line shows an answer as one line, format filled in by what fields takes
// from it.
func line[T any](format string, fields func(v T) []any) showFunc[T] {
	return func(w io.Writer, _ []string, v T) error {
		fmt.Fprintf(w, format, fields(v)...)
		return nil
	}
}

// command is a command's usage, one-line summary and the arguments it takes,
// the fields every command sets; the caller completes the rest.
func command(use, short string, args cobra.PositionalArgs) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args}
}

// configuredCmd completes c, a command that runs a server (an agent, a
// coordinator) from its configuration T: flags > ORCH_* env > file > defaults.
func configuredCmd[T any](c *cobra.Command, run func(ctx context.Context, cfg T) error) *cobra.Command {
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		var cfg T
		if _, err := settings(cmd, &cfg); err != nil {
			return err
		}
		return run(cmd.Context(), cfg)
	}
	return c
}
