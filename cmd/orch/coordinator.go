package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/secrets"
)

func coordinatorFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("listen", ":8989", "address the API listens on (env ORCH_LISTEN)")
	f.Bool("no-migrate", false, "do not apply database migrations at start")
	f.String("strategy", queue.DefaultStrategy, "default placement strategy: "+strings.Join(queue.Strategies, ", "))
	f.Duration("pass-interval", coordinator.DefaultPassInterval, "how often the scheduling passes and the job loop look for work when no notification woke them")
	f.Int("batch", coordinator.DefaultBatch, "pending tasks placed per scheduling pass")
	f.Duration("retention", postgres.DefaultRetention, "how long finished tasks are kept, with their events, logs and stats (0: for ever)")
	f.Duration("node-down-timeout", coordinator.DefaultNodeDownTimeout, "how long a node may stay silent before it is down (longer for nodes beating less often)")
	f.Float64("max-heartbeats-per-second", coordinator.DefaultMaxHeartbeatsPerSecond,
		"heartbeats the whole cluster may send: beyond it agents beat less often (0: no limit)")
	f.Duration("max-heartbeat-interval", coordinator.DefaultMaxHeartbeatInterval,
		"the longest interval the heartbeat limit asks of agents, which bounds how long a lost node goes unnoticed (0: no bound)")
	f.StringArray("admin-token", nil, "API token with admin scope: the secret, or sha256:<hex> of it (repeatable; env ORCH_ADMIN_TOKEN)")
	f.StringArray("write-token", nil, "API token that may submit and stop tasks (repeatable; env ORCH_WRITE_TOKEN)")
	f.StringArray("read-token", nil, "API token with read-only scope (repeatable; env ORCH_READ_TOKEN)")
	f.Bool("insecure", false, "serve the API beyond loopback without tokens")
	f.String("tls-cert", "", "serve HTTPS with this PEM certificate")
	f.String("tls-key", "", "private key of --tls-cert")
}

// tokensOf reads the configured API tokens.
func tokensOf(cfg config.Coordinator) (*coordinator.Tokens, error) {
	toks := &coordinator.Tokens{}
	for _, set := range []struct {
		flag  string
		scope coordinator.Scope
		specs []string
	}{{"admin-token", coordinator.ScopeAdmin, cfg.AdminTokens}, {"write-token", coordinator.ScopeWrite, cfg.WriteTokens},
		{"read-token", coordinator.ScopeRead, cfg.ReadTokens}} {
		for _, spec := range set.specs {
			if err := toks.AddToken(set.scope, spec); err != nil {
				return nil, queue.Invalid(set.flag, err.Error(), "generate one with: orch token generate")
			}
		}
	}
	return toks, nil
}

func newCoordinatorCmd() *cobra.Command {
	cmd := configuredCmd(command("coordinator", "Run a coordinator: the API and the scheduler (run as many replicas as you like)", cobra.NoArgs),
		func(ctx context.Context, cfg config.Coordinator) error { return runCoordinator(ctx, cfg, nil) })
	cmd.Flags().String(config.KeyDatabaseURL, "", databaseURLHelp)
	coordinatorFlags(cmd)
	secretsKeyFlag(cmd)
	statsRetentionFlag(cmd)
	poolerFlag(cmd)
	cmd.Flags().String("listen-database-url", "", "with --database-pooler transaction: a direct PostgreSQL URL for the coordinator's one LISTEN connection")
	// Not in coordinatorFlags: in orch dev, --metrics-listen is the agent's.
	cmd.Flags().String("metrics-listen", "", "also serve GET /metrics without a token on this address, e.g. 127.0.0.1:9464 (default: only the API's /metrics, with a token)")
	return cmd
}

// secretsKeyFlag is the cluster key that seals tasks' secrets, which
// coordinators and agents share.
func secretsKeyFlag(cmd *cobra.Command) {
	cmd.Flags().String("secrets-key-file", "", "file with the cluster's secrets key, shared by coordinators and agents (orch dev makes one; without it tasks cannot have secrets)")
}

func runCoordinator(ctx context.Context, cfg config.Coordinator, ready func(net.Addr)) error {
	if err := requireDB(cfg.DatabaseURL); err != nil {
		return err
	}
	if cfg.MaxHeartbeats < 0 || math.IsNaN(cfg.MaxHeartbeats) || math.IsInf(cfg.MaxHeartbeats, 0) {
		return usageError{err: queue.Invalid("max-heartbeats-per-second", fmt.Sprintf("%v is not a rate", cfg.MaxHeartbeats),
			"give heartbeats a second like 50, or 0 for no limit")}
	}
	if cfg.MaxHeartbeatInterval < 0 {
		return usageError{err: queue.Invalid("max-heartbeat-interval", fmt.Sprintf("%v is negative", cfg.MaxHeartbeatInterval),
			"give a duration like 20s, or 0 for no bound")}
	}
	if !cfg.NoMigrate {
		if _, err := postgres.MigrateUp(ctx, cfg.DatabaseURL); err != nil {
			return fmt.Errorf("migrating: %w", err)
		}
	}
	tokens, err := tokensOf(cfg)
	if err != nil {
		return err
	}
	if cfg.Retention < 0 {
		return usageError{err: queue.Invalid("retention", "must not be negative", "give a duration like 168h, or 0 to keep everything")}
	}
	key, err := secrets.LoadFile(cfg.SecretsKeyFile)
	if err != nil {
		return usageError{err: queue.Invalid("secrets-key-file", err.Error(), "give the file orch dev made, or make one with: orch token secrets-key FILE")}
	}
	pooler, err := postgres.ParsePooler(cfg.DatabasePooler)
	if err != nil {
		return usageError{err: err}
	}
	store, err := postgres.OpenWith(ctx, cfg.DatabaseURL, postgres.Options{Pooler: pooler})
	if err != nil {
		return err
	}
	defer store.Close()
	c, err := coordinator.New(store, coordinator.Options{
		Listen: cfg.Listen, Strategy: cfg.Strategy, PassInterval: cfg.PassInterval,
		Batch: cfg.Batch, NodeDownTimeout: cfg.NodeDownTimeout,
		MaxHeartbeatsPerSecond: cfg.MaxHeartbeats, MaxHeartbeatInterval: cfg.MaxHeartbeatInterval,
		Tokens: tokens, Insecure: cfg.Insecure, TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey,
		SecretsKey: key, Retention: cfg.Retention, StatsRetention: cfg.StatsRetention,
		ListenDatabaseURL: cfg.ListenDatabaseURL, MetricsListen: cfg.MetricsListen,
	})
	if err != nil {
		return usageError{err: err}
	}
	return c.Run(ctx, ready)
}

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Apply or inspect the database schema"}
	cmd.PersistentFlags().String(config.KeyDatabaseURL, "", databaseURLHelp)
	cmd.AddCommand(schemaCmd(command("up", "Apply every pending migration", cobra.NoArgs), postgres.MigrateUp,
		func(cmd *cobra.Command, applied []string) error {
			if len(applied) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "schema is up to date")
			}
			for _, m := range applied {
				fmt.Fprintln(cmd.OutOrStdout(), "applied", m)
			}
			return nil
		}))
	cmd.AddCommand(schemaCmd(command("status", "List migrations and whether each is applied", cobra.NoArgs), postgres.MigrationStatus,
		func(cmd *cobra.Command, states []postgres.MigrationState) error {
			_, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			return output(cmd.OutOrStdout(), cc, nil, states, func(w io.Writer, _ []string, states []postgres.MigrationState) error {
				tb := newTable(w, "VERSION", "MIGRATION", "APPLIED")
				for _, s := range states {
					at := "pending"
					if s.Applied {
						at = s.AppliedAt.Format(time.RFC3339)
					}
					tb.row(fmt.Sprint(s.Version), s.Source, at)
				}
				return tb.flush()
			})
		}))
	return cmd
}

// schemaCmd completes c, a command that works on the schema at the
// configured database URL with call, and shows what call returns.
func schemaCmd[T any](c *cobra.Command, call func(ctx context.Context, url string) (T, error), show func(cmd *cobra.Command, v T) error) *cobra.Command {
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		_, url, err := databaseURL(cmd)
		if err != nil {
			return err
		}
		v, err := call(cmd.Context(), url)
		if err != nil {
			return err
		}
		return show(cmd, v)
	}
	return c
}
