package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/coordinator"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "orch",
		Short:         "orch runs containers on a fleet of machines, with PostgreSQL as its only source of truth",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.String(config.KeyConfig, "", "config file (default "+config.DefaultFile()+"; env ORCH_CONFIG)")
	pf.String(config.KeyAddr, config.DefaultAddr, "coordinator address (env ORCH_ADDR)")
	pf.StringP(config.KeyOutput, "o", "table", "output format: table or json")
	pf.String(config.KeyToken, "", "API token (env ORCH_TOKEN; default: the token file orch dev writes)")
	pf.String("ca-cert", "", "PEM CA certificate to trust for an https:// coordinator (env ORCH_CA_CERT)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err: err, hint: fmt.Sprintf("See '%s --help'.", c.CommandPath())}
	})
	root.AddCommand(newTaskCmd(), newJobCmd(), newNodeCmd(), newCoordinatorCmd(), newAgentCmd(), newMigrateCmd(), newDevCmd(), newTokenCmd(), newBenchCmd())
	root.AddCommand(newVersionCmd())
	root.AddCommand(newVolumeCmd(), newRegistryCmd())
	return root
}

// settings reads a command's configuration: flags > ORCH_* env > file >
// defaults, and decodes it into each of out (config structs).
func settings(cmd *cobra.Command, out ...any) (*viper.Viper, error) {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	fs.AddFlagSet(cmd.Flags())
	fs.AddFlagSet(cmd.InheritedFlags())
	v, err := config.Load(fs)
	if err != nil {
		return nil, usageError{err: err}
	}
	for _, o := range out {
		if err := config.Decode(v, o); err != nil {
			return nil, usageError{err: err}
		}
	}
	return v, nil
}

// databaseURL reads the database URL a command needs (--database-url or
// ORCH_DATABASE_URL), with the rest of its configuration.
func databaseURL(cmd *cobra.Command) (*viper.Viper, string, error) {
	v, err := settings(cmd)
	if err != nil {
		return nil, "", err
	}
	url := v.GetString(config.KeyDatabaseURL)
	return v, url, requireDB(url)
}

// clientFor builds an API client and output settings from a command's configuration.
func clientFor(cmd *cobra.Command) (*coordinator.Client, config.Client, error) {
	var cc config.Client
	if _, err := settings(cmd, &cc); err != nil {
		return nil, cc, err
	}
	if cc.Output != "table" && cc.Output != "json" {
		return nil, cc, usageError{err: fmt.Errorf("--output %q: use table or json", cc.Output)}
	}
	if err := cc.ResolveToken(); err != nil {
		return nil, cc, err
	}
	c, err := coordinator.NewClientTLS(cc.Addr, cc.Token, cc.CACert)
	if err != nil {
		return nil, cc, err
	}
	stderr := cmd.ErrOrStderr()
	c.RetryCreates(coordinator.DefaultCreateRetry, func(err error, wait time.Duration) {
		fmt.Fprintf(stderr, "orch: %v; trying again in %s (for up to %s)\n", err, wait, coordinator.DefaultCreateRetry)
	})
	return c, cc, nil
}

// requireDB refuses to go on without a database URL.
func requireDB(url string) error {
	if url == "" {
		return usageError{err: fmt.Errorf("no database: give --database-url or set ORCH_DATABASE_URL (or run `orch dev` for a private one)")}
	}
	return nil
}

// databaseURLHelp is the help of every --database-url that reaches the
// schema: a URL may list every member of a primary and its standbys, so the
// process follows a failover (go doc ./queue/postgres, Failover).
const databaseURLHelp = "PostgreSQL URL; for a standby that may be promoted list every host, e.g. postgres://orch@db1,db2/orch?target_session_attrs=read-write (env ORCH_DATABASE_URL)"
