package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// devTokenAuto is orch dev --token without a value: require tokens, with
// an admin token made once and kept in the data directory.
const devTokenAuto = "keep"

// Files orch dev keeps in its data directory besides PostgreSQL's, so that
// a restart finds the same cluster at the same place.
const (
	devPortFile   = "orch-dev.port"
	devTokenFile  = "orch-dev.token"
	devSecretsKey = "secrets.key"
)

func newDevCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole single-machine cluster: a private Postgres (unless --database-url), a coordinator and an agent",
		Long: `orch dev starts everything a cluster needs on this machine, in the foreground, until Ctrl-C:
a private PostgreSQL server under --data-dir (unless --database-url names one), the schema,
one coordinator and one agent using the local Docker engine.

Like nomad agent -dev, it serves the API on loopback without tokens, so curl and the CLI
work as they are. --token requires an admin token: --token=VALUE that one, --token alone
one made at the first start and kept in the data directory; either is stored where the
CLI finds it. Configured tokens (--admin-token, ...) are enforced as given, and a
--listen address other than loopback turns --token on.

The data directory keeps tasks, nodes, the PostgreSQL port and the token across runs,
so that scripts, psql sessions and Prometheus configurations keep working. Ctrl-C stops
orch; task containers keep running, and the agent adopts them at the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ccfg config.Coordinator
			var acfg config.Agent
			v, err := settings(cmd, &ccfg, &acfg)
			if err != nil {
				return err
			}
			token, _ := cmd.Flags().GetString("token")
			if !cmd.Flags().Changed("token") {
				token = ""
			}
			return runDev(cmd.Context(), cmd, v.GetString("data-dir"), token, ccfg, acfg)
		},
	}
	f := cmd.Flags()
	f.String(config.KeyDatabaseURL, "", "use this PostgreSQL instead of a private one (env ORCH_DATABASE_URL)")
	f.String("data-dir", defaultDevDir(), "where the private PostgreSQL keeps its data, and orch dev its port and token")
	// orch dev's own --token (the CLI's is the token it sends): require
	// tokens.
	f.String("token", "", "require this admin token on the API (--token alone: one made once and kept in --data-dir)")
	f.Lookup("token").NoOptDefVal = devTokenAuto
	coordinatorFlags(cmd)
	agentFlags(cmd, "")
	secretsKeyFlag(cmd)
	statsRetentionFlag(cmd)
	// A dev cluster is for this machine: listen on loopback unless told otherwise.
	_ = f.Set("listen", "127.0.0.1:8989")
	f.Lookup("listen").DefValue = "127.0.0.1:8989"
	return cmd
}

func runDev(ctx context.Context, cmd *cobra.Command, dataDir, token string, ccfg config.Coordinator, acfg config.Agent) error {
	out := cmd.ErrOrStderr()
	say := func(format string, args ...any) { fmt.Fprintf(out, "orch dev: "+format+"\n", args...) }
	if ccfg.DatabaseURL == "" {
		srv, err := startDevPostgres(ctx, dataDir, say)
		if err != nil {
			return err
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Stop(stopCtx); err != nil {
				say("stopping PostgreSQL: %v", err)
				return
			}
			say("PostgreSQL stopped")
		}()
		ccfg.DatabaseURL = srv.URL()
	} else if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dataDir, err)
	}
	acfg.DatabaseURL = ccfg.DatabaseURL
	ccfg.MetricsListen = "" // --metrics-listen is the agent's here; one address cannot serve both
	if ccfg.SecretsKeyFile == "" {
		// Secrets work out of the box: one key for this cluster, kept
		// with its data.
		path := filepath.Join(dataDir, devSecretsKey)
		if _, err := secrets.EnsureFile(path); err != nil {
			return err
		}
		ccfg.SecretsKeyFile = path
	}
	acfg.SecretsKeyFile = ccfg.SecretsKeyFile
	auth, err := devTokens(dataDir, token, &ccfg)
	if err != nil {
		return err
	}
	ready := make(chan net.Addr, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runCoordinator(gctx, ccfg, func(a net.Addr) { ready <- a }) })
	var addr net.Addr
	select {
	case addr = <-ready:
	case <-gctx.Done():
		return g.Wait()
	}
	base := "http://" + addr.String()
	say("API and status page  %s/  (%s)", base, auth)
	say("database             %s", ccfg.DatabaseURL)
	say("data directory       %s", dataDir)
	g.Go(func() error { return runAgent(gctx, acfg) })
	say("agent                node %q on the local Docker engine", acfg.Name)
	say("try                  orch task run --image IMAGE -- ARGS   (the README's tour builds a local image)")
	say("Ctrl-C stops orch; task containers keep running and are adopted at the next start")
	err = g.Wait()
	if ctx.Err() != nil {
		say("stopped; task containers keep running, and the agent adopts them at the next orch dev (orch task delete stops a task)")
		return nil
	}
	return err
}

// startDevPostgres starts the private PostgreSQL in dataDir on the port of
// its last run, kept in the data directory (a new one only if that port is
// taken meanwhile, which it says).
func startDevPostgres(ctx context.Context, dataDir string, say func(string, ...any)) (*pgserver.Server, error) {
	say("starting a private PostgreSQL in %s", dataDir)
	portFile := filepath.Join(dataDir, devPortFile)
	port := 0
	if b, err := os.ReadFile(portFile); err == nil {
		port, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: dataDir, Port: port})
	if err != nil && port != 0 && ctx.Err() == nil {
		say("PostgreSQL could not start on port %d, kept from the last run (%v); trying another", port, err)
		srv, err = pgserver.Start(ctx, pgserver.Options{DataDir: dataDir})
	}
	if err != nil {
		return nil, err
	}
	if srv.Port() != port {
		if port != 0 {
			say("PostgreSQL's port is now %d (it was %d)", srv.Port(), port)
		}
		if err := os.WriteFile(portFile, []byte(strconv.Itoa(srv.Port())+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("keeping the port in %s: %w", portFile, err)
		}
	}
	return srv, nil
}

// devTokens decides how orch dev's API authenticates, sets ccfg's tokens
// accordingly and describes it for the start-up lines.
func devTokens(dataDir, token string, ccfg *config.Coordinator) (string, error) {
	if len(ccfg.AdminTokens)+len(ccfg.WriteTokens)+len(ccfg.ReadTokens) > 0 && token == "" {
		return "the configured API tokens", nil
	}
	if token == "" && !loopbackListen(ccfg.Listen) {
		token = devTokenAuto // reachable from elsewhere: never open
	}
	if token == "" {
		return "no token needed on loopback; orch dev --token requires one", nil
	}
	kept := filepath.Join(dataDir, devTokenFile)
	if token == devTokenAuto {
		b, err := os.ReadFile(kept)
		switch {
		case err == nil && strings.TrimSpace(string(b)) != "":
			token = strings.TrimSpace(string(b))
		case err == nil || errors.Is(err, fs.ErrNotExist):
			if token, err = newToken(); err != nil {
				return "", err
			}
			if err := writeTokenFile(kept, token); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("reading the kept token: %w", err)
		}
	}
	ccfg.AdminTokens = append(ccfg.AdminTokens, token)
	cli := config.DefaultTokenFile()
	if err := writeTokenFile(cli, token); err != nil {
		return "", err
	}
	return fmt.Sprintf("admin token in %s, where the CLI finds it; curl -H \"Authorization: Bearer $(cat %s)\"", cli, cli), nil
}

// loopbackListen reports whether a listen address serves this machine only.
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
