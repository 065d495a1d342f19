package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/queue/postgres/pgserver"
	"github.com/orchd/orch/queue/secrets"
)

// defaultDevDir keeps the dev cluster's database across runs. Root's home
// is closed to the postgres user that the server must run as, so root's
// cluster lives under /var/lib instead.
func defaultDevDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/orch/dev"
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "orch", "dev")
}

func newDevCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole single-machine cluster: a private Postgres (unless --database-url), a coordinator and an agent",
		Long: `orch dev starts everything a cluster needs on this machine, in the foreground, until Ctrl-C:
a private PostgreSQL server under --data-dir (unless --database-url names one), the schema,
one coordinator and one agent using the local Docker engine. Ctrl-C stops all of it cleanly;
the data directory keeps tasks and nodes for the next run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ccfg config.Coordinator
			var acfg config.Agent
			v, err := settings(cmd, &ccfg, &acfg)
			if err != nil {
				return err
			}
			return runDev(cmd.Context(), cmd, v.GetString("data-dir"), ccfg, acfg)
		},
	}
	f := cmd.Flags()
	f.String(config.KeyDatabaseURL, "", "use this PostgreSQL instead of a private one (env ORCH_DATABASE_URL)")
	f.String("data-dir", defaultDevDir(), "where the private PostgreSQL keeps its data")
	coordinatorFlags(cmd)
	agentFlags(cmd, "")
	secretsKeyFlag(cmd)
	statsRetentionFlag(cmd)
	// A dev cluster is for this machine: listen on loopback unless told otherwise.
	_ = f.Set("listen", "127.0.0.1:8989")
	f.Lookup("listen").DefValue = "127.0.0.1:8989"
	return cmd
}

func runDev(ctx context.Context, cmd *cobra.Command, dataDir string, ccfg config.Coordinator, acfg config.Agent) error {
	out := cmd.ErrOrStderr()
	if ccfg.DatabaseURL == "" {
		fmt.Fprintf(out, "orch dev: starting a private PostgreSQL in %s\n", dataDir)
		srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: dataDir})
		if err != nil {
			return err
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Stop(stopCtx); err != nil {
				fmt.Fprintln(out, "orch dev: stopping PostgreSQL:", err)
				return
			}
			fmt.Fprintln(out, "orch dev: PostgreSQL stopped")
		}()
		ccfg.DatabaseURL = srv.URL()
	}
	acfg.DatabaseURL = ccfg.DatabaseURL
	ccfg.MetricsListen = "" // --metrics-listen is the agent's here; one address cannot serve both
	if ccfg.SecretsKeyFile == "" {
		// Secrets work out of the box: one key for this cluster, kept
		// with its data.
		path := filepath.Join(dataDir, "secrets.key")
		if _, err := secrets.EnsureFile(path); err != nil {
			return err
		}
		ccfg.SecretsKeyFile = path
	}
	acfg.SecretsKeyFile = ccfg.SecretsKeyFile
	if len(ccfg.AdminTokens) == 0 {
		// The newcomer's CLI must just work, and the API must not be open:
		// make an admin token and leave it where the CLI looks.
		tok, err := newToken()
		if err != nil {
			return err
		}
		path := config.DefaultTokenFile()
		if err := writeTokenFile(path, tok); err != nil {
			return err
		}
		ccfg.AdminTokens = []string{tok}
		fmt.Fprintf(out, "orch dev: admin token %s (stored in %s, where the CLI finds it)\n", tok, path)
	}
	ready := make(chan net.Addr, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runCoordinator(gctx, ccfg, func(a net.Addr) { ready <- a }) })
	select {
	case addr := <-ready:
		fmt.Fprintf(out, "orch dev: coordinator listening on %s, database %s\n", addr, ccfg.DatabaseURL)
	case <-gctx.Done():
		return g.Wait()
	}
	g.Go(func() error { return runAgent(gctx, acfg) })
	fmt.Fprintf(out, "orch dev: agent %q running; try: orch task create --image <image> --wait\n", acfg.Name)
	fmt.Fprintln(out, "orch dev: press Ctrl-C to stop")
	err := g.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(out, "orch dev: shutting down")
		return nil
	}
	return err
}
