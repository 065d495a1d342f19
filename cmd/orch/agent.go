package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/config"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/secrets"
)

func newAgentCmd() *cobra.Command {
	cmd := configuredCmd(command("agent", "Run an agent: registers this machine and runs the tasks placed on it (dials out to Postgres only)", cobra.NoArgs),
		func(ctx context.Context, cfg config.Agent) error {
			tuneAgentGC()
			return runAgent(ctx, cfg)
		})
	cmd.Flags().String(config.KeyDatabaseURL, "", databaseURLHelp)
	agentFlags(cmd, "")
	runtimeFlag(cmd)
	secretsKeyFlag(cmd)
	statsRetentionFlag(cmd)
	poolerFlag(cmd)
	cmd.Flags().StringArray("coordinator", nil, "a coordinator's API address, which an agent behind a transaction pooler long-polls for wake-ups (repeatable; it sends --token)")
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
	if err := datacenterLabel(cfg.Datacenter, labels); err != nil {
		return agent.Options{}, err
	}
	opts := agent.Options{
		Name: cfg.Name, Labels: labels, Capacity: agent.Cap(machine, limit), Address: advertisedAddress(cfg),
		HeartbeatInterval: cfg.HeartbeatInterval, PollInterval: cfg.PollInterval, StopGrace: cfg.StopGrace,
		RestartBackoff:    queue.Backoff{Base: cfg.RestartBackoff, Max: cfg.RestartBackoffMax, Reset: cfg.RestartBackoffReset},
		ReconcileInterval: cfg.ReconcileInterval, MaxParallelStarts: cfg.ParallelStarts,
		AllowPrivileged: cfg.AllowPrivileged, IdlePollInterval: cfg.IdlePollInterval,
		AllowHostMounts: cfg.AllowHostMounts, HostMountPrefix: cfg.HostMountPrefix,
	}
	if err := limitOptions(cfg, &opts); err != nil {
		return agent.Options{}, err
	}
	for _, c := range cfg.Coordinators {
		if u, err := url.Parse(c); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return agent.Options{}, usageError{err: queue.Invalid("coordinator", fmt.Sprintf("%q is not an http(s) address", c), "give e.g. --coordinator http://10.0.0.5:8989")}
		}
		opts.Coordinators = append(opts.Coordinators, strings.TrimSuffix(c, "/"))
	}
	opts.CoordinatorToken = cfg.Token
	if opts.SecretsKey, err = secrets.LoadFile(cfg.SecretsKeyFile); err != nil {
		return agent.Options{}, usageError{err: queue.Invalid("secrets-key-file", err.Error(), "give the coordinators' key file")}
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
	rt, closeRT, err := agent.OpenRuntime(ctx, cfg.Runtime)
	if err != nil {
		return err
	}
	defer closeRT()
	pooler, err := postgres.ParsePooler(cfg.DatabasePooler)
	if err != nil {
		return usageError{err: err}
	}
	store, err := postgres.OpenWith(ctx, cfg.DatabaseURL, postgres.Options{Pooler: pooler, MaxConns: agentPoolConns(pooler)})
	if err != nil {
		return err
	}
	defer store.Close()
	store.SetStatsRetention(cfg.StatsRetention)
	return runAgentWithMetrics(ctx, agent.New(store, rt, opts), cfg.MetricsListen)
}

func agentFlags(cmd *cobra.Command, prefix string) {
	f := cmd.Flags()
	host, _ := os.Hostname()
	f.String(prefix+"name", host, "node name (default: the hostname)")
	f.String(prefix+"cpu", "", "cap the CPU offered, in cores (default: all)")
	f.String(prefix+"memory", "", "cap the memory offered, e.g. 8GiB (default: all)")
	f.String(prefix+"disk", "", "cap the disk offered, e.g. 100GiB (default: the size of /)")
	f.StringArray(prefix+"label", nil, "node label k=v for constraints (repeatable)")
	f.String(prefix+"datacenter", queue.DefaultDatacenter, "the node's datacenter (its dc label), which jobs' datacenters match")
	f.String(prefix+"address", "", "the address others reach this node's published ports at (default: this machine's address towards the database)")
	f.Duration(prefix+"heartbeat-interval", agent.DefaultHeartbeatInterval, "how often the agent reports it is alive")
	f.Duration(prefix+"poll-interval", agent.DefaultPollInterval, "how often to look for work while the notification connection is down")
	f.Duration(prefix+"idle-poll-interval", agent.DefaultIdlePollInterval, "how often to look for work anyway while notifications arrive (skipped while heartbeats find nothing new)")
	f.Duration(prefix+"stop-grace", agent.DefaultStopGrace, "time a container gets to exit after SIGTERM")
	f.Duration(prefix+"restart-backoff", queue.DefaultBackoff.Base, "delay before a task's first restart; it doubles with every restart")
	f.Duration(prefix+"restart-backoff-max", queue.DefaultBackoff.Max, "longest delay between restarts")
	f.Duration(prefix+"restart-backoff-reset", queue.DefaultBackoff.Reset, "a task that ran this long restarts after --restart-backoff again")
	f.Duration(prefix+"reconcile-interval", agent.DefaultReconcileInterval, "how often the agent compares its containers with the database (in full every tenth time while heartbeats find nothing new)")
	f.Int(prefix+"parallel-starts", agent.DefaultMaxParallelStarts, "containers the agent starts at once")
	f.Bool(prefix+"allow-privileged", false, "run privileged and host-network containers (which only admins may submit)")
	f.Bool(prefix+"allow-host-mounts", false, "bind host paths below --host-mount-prefix into containers (which only admins may submit)")
	f.String(prefix+"host-mount-prefix", agent.DefaultHostMountPrefix, "the directory host mounts must lie below")
	f.Int64(prefix+"pids-limit", agent.DefaultPidsLimit, "processes (threads included) each task container may have; a task may ask for fewer (0: no limit)")
	f.String(prefix+"container-log-max-size", queue.FormatBytes(agent.DefaultContainerLogMaxBytes), "size of each of the engine's own log files of a container, for the json-file and local log drivers (0: the engine's default)")
	f.Int(prefix+"container-log-max-files", agent.DefaultContainerLogMaxFiles, "how many of those files the engine keeps per container")
	observabilityFlags(cmd, prefix)
}

// limitOptions copies the container limits into the agent's options.
func limitOptions(cfg config.Agent, opts *agent.Options) error {
	if cfg.PidsLimit < 0 {
		return queue.Invalid("pids-limit", fmt.Sprintf("%d is negative", cfg.PidsLimit), "give a number of processes like 2048, or 0 for no limit")
	}
	opts.PidsLimit = cfg.PidsLimit
	if cfg.ContainerLogMaxSize != "" {
		n, err := queue.ParseBytes(cfg.ContainerLogMaxSize)
		if err != nil {
			return queue.Invalid("container-log-max-size", err.Error(), "give a size like 10MiB")
		}
		opts.ContainerLogMaxBytes = n
	}
	if cfg.ContainerLogMaxFiles < 0 {
		return queue.Invalid("container-log-max-files", fmt.Sprintf("%d is negative", cfg.ContainerLogMaxFiles), "give a count like 3")
	}
	opts.ContainerLogMaxFiles = cfg.ContainerLogMaxFiles
	return nil
}

func runtimeFlag(cmd *cobra.Command) {
	cmd.Flags().String("runtime", agent.RuntimeDocker, "container runtime: docker, or memory (a simulation: nothing runs; "+
		"a task's -sleep D and -exit N arguments are honoured as by the test workload)")
}

// poolerFlag says the database URL goes through a transaction pooler.
func poolerFlag(cmd *cobra.Command) {
	cmd.Flags().String("database-pooler", "", "transaction: the database URL goes through a pooler in transaction mode, such as PgBouncer (no prepared statements, no LISTEN through it)")
}

// agentPoolConns is an agent's connections to the database: through a
// pooler, agent.PooledConns (0 otherwise: pgx's default).
func agentPoolConns(p postgres.Pooler) int {
	if p == postgres.TransactionPooler {
		return agent.PooledConns
	}
	return 0
}

// statsRetentionFlag bounds the stats history: agents prune their node's as
// they write, coordinators every node's.
func statsRetentionFlag(cmd *cobra.Command) {
	cmd.Flags().Duration("stats-retention", postgres.DefaultStatsRetention, "how long node and task stats history is kept")
}

// observabilityFlags are the agent's settings for stats, logs and metrics.
func observabilityFlags(cmd *cobra.Command, prefix string) {
	f := cmd.Flags()
	f.Duration(prefix+"stats-interval", agent.DefaultStatsInterval, "how often the agent writes node and task stats")
	f.Int64(prefix+"log-max-lines", queue.DefaultLogLimits.MaxLines, "log lines kept per task; older ones are dropped and counted")
	f.String(prefix+"log-max-bytes", queue.FormatBytes(queue.DefaultLogLimits.MaxBytes), "log bytes kept per task, e.g. 1MiB")
	f.String(prefix+"metrics-listen", "", "serve the agent's Prometheus metrics on this address, e.g. 127.0.0.1:9464 (default: no port is opened)")
}

// observabilityOptions copies the flags into the agent's options.
func observabilityOptions(cfg config.Agent, opts *agent.Options) error {
	opts.StatsInterval = cfg.StatsInterval
	opts.LogLimits.MaxLines = cfg.LogMaxLines
	if cfg.LogMaxLines < 0 {
		return queue.Invalid("log-max-lines", fmt.Sprintf("%d is negative", cfg.LogMaxLines), "give a number of lines like 10000")
	}
	if cfg.LogMaxBytes != "" {
		n, err := queue.ParseBytes(cfg.LogMaxBytes)
		if err != nil {
			return queue.Invalid("log-max-bytes", err.Error(), "give a size like 1MiB")
		}
		opts.LogLimits.MaxBytes = n
	}
	if cfg.StatsInterval < 0 {
		return queue.Invalid("stats-interval", "must not be negative", "give a duration like 10s")
	}
	return nil
}

// runAgentWithMetrics runs the agent and, only when addr is set, serves its
// metrics there; without it the agent opens no port at all.
func runAgentWithMetrics(ctx context.Context, a *agent.Agent, addr string) error {
	if addr == "" {
		return a.Run(ctx)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Warn("serving agent metrics", "err", err)
		}
	}()
	slog.Info("agent metrics listening", "addr", ln.Addr().String())
	defer func() {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	return a.Run(ctx)
}

// agentGCPercent is the agent's default GOGC. The agent runs on every
// machine beside the workloads, and its live heap is a few megabytes: at
// Go's default of 100 the room the heap may grow into before a collection
// is as big again, a tenth of the agent's RSS holding 250 containers.
// Collections of so small a heap are cheap (README, Performance). GOGC in
// the environment still decides.
const agentGCPercent = 50

func tuneAgentGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(agentGCPercent)
	}
}
