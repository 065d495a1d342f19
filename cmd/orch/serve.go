package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/config"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

func coordinatorFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("listen", ":8989", "address the API listens on (env ORCH_LISTEN)")
	f.Bool("no-migrate", false, "do not apply database migrations at start")
	f.String("strategy", queue.DefaultStrategy, "default placement strategy: "+strings.Join(queue.Strategies, ", "))
	f.Duration("pass-interval", time.Second, "scheduling pass interval when not woken by new work")
	f.Int("batch", 500, "pending tasks placed per scheduling pass")
	f.Duration("node-down-timeout", 10*time.Second, "how long a node may stay silent before it is down (longer for nodes beating less often)")
	f.Float64("max-heartbeats-per-second", coordinator.DefaultMaxHeartbeatsPerSecond,
		"heartbeats the whole cluster may send: beyond it agents beat less often (0: no limit)")
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

func agentFlags(cmd *cobra.Command, prefix string) {
	f := cmd.Flags()
	host, _ := os.Hostname()
	f.String(prefix+"name", host, "node name (default: the hostname)")
	f.String(prefix+"cpu", "", "cap the CPU offered, in cores (default: all)")
	f.String(prefix+"memory", "", "cap the memory offered, e.g. 8GiB (default: all)")
	f.String(prefix+"disk", "", "cap the disk offered, e.g. 100GiB (default: the size of /)")
	f.StringArray(prefix+"label", nil, "node label k=v for constraints (repeatable)")
	f.Duration(prefix+"heartbeat-interval", 2*time.Second, "how often the agent reports it is alive")
	f.Duration(prefix+"poll-interval", 2*time.Second, "how often to look for work while the notification connection is down")
	f.Duration(prefix+"idle-poll-interval", agent.DefaultIdlePollInterval, "how often to look for work anyway while notifications arrive")
	f.Duration(prefix+"stop-grace", 10*time.Second, "time a container gets to exit after SIGTERM")
	f.Duration(prefix+"restart-backoff", queue.DefaultBackoff.Base, "delay before a task's first restart; it doubles with every restart")
	f.Duration(prefix+"restart-backoff-max", queue.DefaultBackoff.Max, "longest delay between restarts")
	f.Duration(prefix+"restart-backoff-reset", queue.DefaultBackoff.Reset, "a task that ran this long restarts after --restart-backoff again")
	f.Duration(prefix+"reconcile-interval", 30*time.Second, "how often the agent compares its containers with the database in full")
	f.Int(prefix+"parallel-starts", 8, "containers the agent starts at once")
	f.Bool(prefix+"allow-privileged", false, "run privileged and host-network containers (which only admins may submit)")
	observabilityFlags(cmd, prefix)
}

func newCoordinatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run a coordinator: the API and the scheduler (run as many replicas as you like)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := settings(cmd)
			if err != nil {
				return err
			}
			var cfg config.Coordinator
			if err := config.Decode(v, &cfg); err != nil {
				return usageError{err: err}
			}
			return runCoordinator(cmd.Context(), cfg, nil)
		},
	}
	cmd.Flags().String(config.KeyDatabaseURL, "", "PostgreSQL URL (env ORCH_DATABASE_URL)")
	coordinatorFlags(cmd)
	return cmd
}

func requireDB(url string) error {
	if url == "" {
		return usageError{err: fmt.Errorf("no database: give --database-url or set ORCH_DATABASE_URL (or run `orch dev` for a private one)")}
	}
	return nil
}

// heartbeatLimit turns the flag's "0: no limit" into the coordinator's
// "negative: never scale".
func heartbeatLimit(perSecond float64) float64 {
	if perSecond == 0 {
		return -1
	}
	return perSecond
}

func runCoordinator(ctx context.Context, cfg config.Coordinator, ready func(net.Addr)) error {
	if err := requireDB(cfg.DatabaseURL); err != nil {
		return err
	}
	if cfg.MaxHeartbeats < 0 || math.IsNaN(cfg.MaxHeartbeats) || math.IsInf(cfg.MaxHeartbeats, 0) {
		return usageError{err: queue.Invalid("max-heartbeats-per-second", fmt.Sprintf("%v is not a rate", cfg.MaxHeartbeats),
			"give heartbeats a second like 50, or 0 for no limit")}
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
	store, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	c, err := coordinator.New(store, coordinator.Options{
		Listen: cfg.Listen, Strategy: cfg.Strategy, PassInterval: cfg.PassInterval,
		Batch: cfg.Batch, NodeDownTimeout: cfg.NodeDownTimeout,
		MaxHeartbeatsPerSecond: heartbeatLimit(cfg.MaxHeartbeats),
		Tokens:                 tokens, Insecure: cfg.Insecure, TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey,
	})
	if err != nil {
		return usageError{err: err}
	}
	return c.Run(ctx, ready)
}

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run an agent: registers this machine and runs the tasks placed on it (dials out to Postgres only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := settings(cmd)
			if err != nil {
				return err
			}
			var cfg config.Agent
			if err := config.Decode(v, &cfg); err != nil {
				return usageError{err: err}
			}
			tuneAgentGC()
			return runAgent(cmd.Context(), cfg)
		},
	}
	cmd.Flags().String(config.KeyDatabaseURL, "", "PostgreSQL URL (env ORCH_DATABASE_URL)")
	agentFlags(cmd, "")
	runtimeFlag(cmd)
	return cmd
}

// agentOptions turns configuration into agent options, reading the
// machine's capacity and applying the caps.
func agentOptions(cfg config.Agent) (agent.Options, error) {
	if cfg.Name == "" {
		return agent.Options{}, usageError{err: fmt.Errorf("--name: a node needs a name")}
	}
	var limit queue.Resources
	var err error
	if cfg.CPU != "" {
		if limit.CPUMillis, err = queue.ParseCPU(cfg.CPU); err != nil {
			return agent.Options{}, queue.Invalid("cpu", err.Error(), "give cores like 2 or millicores like 1500m")
		}
	}
	if cfg.Memory != "" {
		if limit.MemoryBytes, err = queue.ParseBytes(cfg.Memory); err != nil {
			return agent.Options{}, queue.Invalid("memory", err.Error(), "give a size like 8GiB")
		}
	}
	if cfg.Disk != "" {
		if limit.DiskBytes, err = queue.ParseBytes(cfg.Disk); err != nil {
			return agent.Options{}, queue.Invalid("disk", err.Error(), "give a size like 100GiB")
		}
	}
	machine, err := agent.MachineCapacity("/")
	if err != nil {
		return agent.Options{}, err
	}
	labels := map[string]string{}
	for _, kv := range cfg.Labels {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return agent.Options{}, queue.Invalid("label", fmt.Sprintf("%q is not KEY=VALUE", kv), "write --label zone=a")
		}
		labels[k] = val
	}
	opts := agent.Options{
		Name: cfg.Name, Labels: labels, Capacity: agent.Cap(machine, limit),
		HeartbeatInterval: cfg.HeartbeatInterval, PollInterval: cfg.PollInterval, StopGrace: cfg.StopGrace,
		RestartBackoff:    queue.Backoff{Base: cfg.RestartBackoff, Max: cfg.RestartBackoffMax, Reset: cfg.RestartBackoffReset},
		ReconcileInterval: cfg.ReconcileInterval, MaxParallelStarts: cfg.ParallelStarts,
		AllowPrivileged: cfg.AllowPrivileged, IdlePollInterval: cfg.IdlePollInterval,
	}
	return opts, observabilityOptions(cfg, &opts)
}

func runAgent(ctx context.Context, cfg config.Agent) error {
	if err := requireDB(cfg.DatabaseURL); err != nil {
		return err
	}
	opts, err := agentOptions(cfg)
	if err != nil {
		return err
	}
	rt, closeRT, err := agentRuntime(ctx, cfg.Runtime)
	if err != nil {
		return err
	}
	defer closeRT()
	store, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	store.SetStatsRetention(cfg.StatsRetention)
	return runAgentWithMetrics(ctx, agent.New(store, rt, opts), cfg.MetricsListen)
}

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Apply or inspect the database schema"}
	cmd.PersistentFlags().String(config.KeyDatabaseURL, "", "PostgreSQL URL (env ORCH_DATABASE_URL)")
	dbURL := func(cmd *cobra.Command) (string, error) {
		v, err := settings(cmd)
		if err != nil {
			return "", err
		}
		url := v.GetString(config.KeyDatabaseURL)
		return url, requireDB(url)
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := dbURL(cmd)
			if err != nil {
				return err
			}
			applied, err := postgres.MigrateUp(cmd.Context(), url)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "schema is up to date")
			}
			for _, m := range applied {
				fmt.Fprintln(cmd.OutOrStdout(), "applied", m)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := dbURL(cmd)
			if err != nil {
				return err
			}
			states, err := postgres.MigrationStatus(cmd.Context(), url)
			if err != nil {
				return err
			}
			_, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), states)
			}
			tb := newTable(cmd.OutOrStdout(), "VERSION", "MIGRATION", "APPLIED")
			for _, s := range states {
				at := "pending"
				if s.Applied {
					at = s.AppliedAt.Format(time.RFC3339)
				}
				tb.row(fmt.Sprint(s.Version), s.Source, at)
			}
			return tb.flush()
		},
	})
	return cmd
}
