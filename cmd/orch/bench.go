package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/orchd/orch/cmd/orch/bench"
	"github.com/orchd/orch/queue"
)

func newBenchCmd() *cobra.Command {
	o := bench.Defaults(false)
	var lists benchLists
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure orch against PostgreSQL and Docker on this machine, in one run",
		Long: `orch bench measures, in one run against one PostgreSQL server, how fast orch places and runs
tasks compared with what the machine can do:

  pgbench     pgbench's built-in TPC-B-like test: the machine's commit rate (TPS)
  placement   a backlog of tasks placed by one coordinator onto simulated nodes: placements/s
  pipeline    tasks created through the API and run by simulated agents (the real agent code with
              an in-memory container runtime): tasks/s, DB writes per task, and
              tasks/s x write transactions per task / pgbench TPS
  processes   a coordinator and an agent (--runtime memory) as processes of this binary under
              load: their peak RSS
  latency     create->claimed p50/p99 with 1, 10 and 100 agents, submissions paced so that
              the figure is latency, not queueing (database timestamps)
  docker      create->running through orch vs 'docker run' of the same image, interleaved,
              with the real Docker engine; the ratio of medians
  idle        Postgres CPU time taken by idle simulated agents (heartbeats, polls, LISTEN),
              and what one NOTIFY costs with them listening
  fleet       1,000 and 10,000 simulated agents through PgBouncer (transaction mode), woken by
              long-polling a coordinator process: backends, what a heartbeat costs, idle CPU of
              Postgres, PgBouncer, the coordinator and the agents over 120 s after settling,
              create->claimed p50/p99, time to notice 10 agents killed at once, memory

Unless --database-url is given it starts a private PostgreSQL (durable settings, high
max_connections, pg_stat_statements) in a temporary directory and removes it afterwards. With
--database-url use an empty database: the bench writes tasks, nodes and pgbench's tables (dropped
at the end), and CPU figures need the server on this machine.

The docker phase builds the test workload image from testdata/workload when run inside the orch
repository (or takes --image), and removes every container and image it made.

It prints a table and, with --json FILE, writes the same figures as JSON. --quick runs a small
version in about a minute, to check that it works; its figures are not meant to be compared.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Quick {
				if err := quickDefaults(cmd.Flags()); err != nil {
					return err
				}
			}
			var err error
			if o.LatencyAgents, err = intList(lists.latencyAgents, "latency-agents", 1); err != nil {
				return err
			}
			if o.IdleAgents, err = intList(lists.idleAgents, "idle-agents", 0); err != nil {
				return err
			}
			if o.FleetAgents, err = intList(lists.fleetAgents, "fleet-agents", 1); err != nil {
				return err
			}
			o.Phases = listItems(lists.phases)
			if o.DatabaseURL == "" {
				v, err := settings(cmd)
				if err != nil {
					return err
				}
				o.DatabaseURL = v.GetString("database-url")
			}
			o.Out, o.Log = cmd.OutOrStdout(), cmd.ErrOrStderr()
			_, err = bench.Run(cmd.Context(), o)
			return err
		},
	}
	benchFlags(cmd.Flags(), &o, &lists)
	return cmd
}

// benchLists are the bench's flags that hold comma-separated lists.
type benchLists struct{ latencyAgents, idleAgents, fleetAgents, phases string }

// benchFlags registers the flags of `orch bench`, bound to o and l, with
// o's values as their defaults.
func benchFlags(f *pflag.FlagSet, o *bench.Options, l *benchLists) {
	f.BoolVar(&o.Quick, "quick", o.Quick, "a small version that runs in about a minute (to check the bench works, not to compare figures)")
	f.StringVar(&o.Note, "note", o.Note, "a note about the machine to keep with the figures (e.g. \"2 cores shared with other jobs\")")
	f.StringVar(&o.JSONFile, "json", o.JSONFile, "also write the figures as JSON to this file")
	f.StringVar(&o.CPUProfile, "cpu-profile", o.CPUProfile, "write a CPU profile of the bench process (simulated agents, coordinators) to this file, for go tool pprof")
	f.StringVar(&o.DatabaseURL, "database-url", o.DatabaseURL, "use this PostgreSQL database instead of a private server (env ORCH_DATABASE_URL)")
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "where the private server keeps its data (default: a temporary directory, removed afterwards)")
	f.StringVar(&l.phases, "phases", strings.Join(o.Phases, ","), "phases to run, comma-separated")
	f.IntVar(&o.PGBenchScale, "pgbench-scale", o.PGBenchScale, "pgbench scale factor (-s)")
	f.IntVar(&o.PGBenchClients, "pgbench-clients", o.PGBenchClients, "pgbench clients (-c)")
	f.DurationVar(&o.PGBenchTime, "pgbench-time", o.PGBenchTime, "how long pgbench runs (-T)")
	f.IntVar(&o.Agents, "agents", o.Agents, "simulated agents for the placement, pipeline and jobs phases")
	f.IntVar(&o.Tasks, "tasks", o.Tasks, "tasks for the placement phase and again for the pipeline phase")
	f.IntVar(&o.DrainTasks, "drain-tasks", o.DrainTasks, "the drain phase's backlog, and the jobs River works in the peer-river phase")
	f.IntVar(&o.JobServices, "job-services", o.JobServices, "services the jobs phase runs as jobs")
	f.IntVar(&o.JobTasks, "job-tasks", o.JobTasks, "tasks of each service of the jobs phase")
	f.StringVar(&o.Strategy, "strategy", o.Strategy, "placement strategy the bench's coordinators use")
	f.StringVar(&l.latencyAgents, "latency-agents", joinInts(o.LatencyAgents), "agent counts to measure create->claimed latency with")
	f.IntVar(&o.LatencyTasks, "latency-tasks", o.LatencyTasks, "tasks submitted per latency measurement")
	f.Float64Var(&o.LatencyRate, "latency-rate", o.LatencyRate, "submissions per second in the latency phase")
	f.StringVar(&l.idleAgents, "idle-agents", joinInts(o.IdleAgents), "idle agent counts to measure Postgres CPU with (0: the server alone)")
	f.DurationVar(&o.IdleWindow, "idle-window", o.IdleWindow, "how long idle Postgres CPU is measured")
	f.StringVar(&l.fleetAgents, "fleet-agents", joinInts(o.FleetAgents), "fleet sizes of the fleet phase (agents through PgBouncer, long-polling a coordinator)")
	f.DurationVar(&o.FleetWindow, "fleet-window", o.FleetWindow, "how long a settled fleet's Postgres CPU is measured")
	f.IntVar(&o.FleetTasks, "fleet-tasks", o.FleetTasks, "tasks whose create->claimed is measured across each fleet")
	f.IntVar(&o.FleetKill, "fleet-kill", o.FleetKill, "agents of each fleet killed at once, to time their nodes' loss")
	f.DurationVar(&o.FleetBeatTime, "fleet-beat-time", o.FleetBeatTime, "how long heartbeats are driven at their most, to measure what one costs")
	f.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", o.HeartbeatInterval, "heartbeat interval of the simulated agents (the agent's default)")
	f.Float64Var(&o.MaxHeartbeatsPerSecond, "max-heartbeats-per-second", o.MaxHeartbeatsPerSecond,
		"the cluster's heartbeat limit while agents are idle, as the coordinators' flag (0: none)")
	f.DurationVar(&o.MaxHeartbeatInterval, "max-heartbeat-interval", o.MaxHeartbeatInterval,
		"the longest interval that limit asks of agents, as the coordinators' flag (0: no bound)")
	f.BoolVar(&o.Keep, "keep", o.Keep, "keep the temporary directory (server data, process logs) and say where it is")
	f.IntVar(&o.ProcessTasks, "process-tasks", o.ProcessTasks, "short tasks run through the coordinator and agent processes")
	f.IntVar(&o.ProcessHeld, "process-held", o.ProcessHeld, "containers the agent process holds meanwhile")
	f.IntVar(&o.DockerRuns, "docker-runs", o.DockerRuns, "container starts measured each way in the docker phase")
	f.StringVar(&o.Image, "image", o.Image, "image for the docker phase (default: build testdata/workload)")
	f.IntVar(&o.RetentionTasks, "retention-tasks", o.RetentionTasks, "finished tasks the retention phase stores and deletes")
	f.IntVar(&o.RetentionWaiting, "retention-waiting", o.RetentionWaiting, "restarts in backoff a pass is timed behind")
	f.IntVar(&o.RetentionPasses, "retention-passes", o.RetentionPasses, "passes timed before the retention deletes")
}

// quickDefaults gives every flag the user did not set its --quick default:
// a flag given explicitly wins over both defaults.
func quickDefaults(f *pflag.FlagSet) error {
	q := bench.Defaults(true)
	qf := pflag.NewFlagSet("quick", pflag.ContinueOnError)
	benchFlags(qf, &q, &benchLists{})
	var err error
	f.VisitAll(func(fl *pflag.Flag) {
		qfl := qf.Lookup(fl.Name)
		if err != nil || fl.Changed || qfl == nil || qfl.DefValue == fl.DefValue {
			return
		}
		if e := fl.Value.Set(qfl.DefValue); e != nil {
			err = fmt.Errorf("bench default for --%s: %w", fl.Name, e)
		}
	})
	return err
}

// listItems splits a comma-separated flag value, dropping empty items.
func listItems(s string) []string {
	out := []string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// intList parses "1,10,100".
func intList(s, field string, least int) ([]int, error) {
	var out []int
	for _, part := range listItems(s) {
		n, err := strconv.Atoi(part)
		if err != nil || n < least {
			return nil, queue.Invalid(field, fmt.Sprintf("%q is not a count of at least %d", part, least), "give counts separated by commas, e.g. 1,10,100")
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
