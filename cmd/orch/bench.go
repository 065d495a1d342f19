package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

// benchOpts are the knobs of `orch bench`. Every count and duration has a
// full and a --quick value; a flag given explicitly wins over both.
type benchOpts struct {
	quick       bool
	note        string
	jsonFile    string
	databaseURL string
	dataDir     string
	phases      map[string]bool

	pgbenchScale   int
	pgbenchClients int
	pgbenchTime    time.Duration

	agents   int // simulated agents for placement and pipeline
	tasks    int // tasks for placement and for the pipeline
	strategy string

	latencyAgents []int
	latencyTasks  int
	latencyRate   float64

	idleAgents []int
	idleWindow time.Duration
	heartbeat  time.Duration // of the simulated agents
	// maxHeartbeats is the coordinators' --max-heartbeats-per-second, for
	// the idle agents.
	maxHeartbeats float64

	keep bool // keep the temporary directory

	processTasks int
	processHeld  int

	dockerRuns int
	image      string
}

// Bench phases, in the order they run.
const (
	phasePgbench   = "pgbench"
	phasePlacement = "placement"
	phasePipeline  = "pipeline"
	phaseIdle      = "idle"
	phaseProcesses = "processes"
	phaseLatency   = "latency"
	phaseDocker    = "docker"
)

// The idle phase comes last: its thousand agents leave a thousand
// (cordoned) nodes behind, which every later scheduling pass would read.
var allPhases = []string{phasePgbench, phasePlacement, phasePipeline, phaseProcesses, phaseLatency, phaseDocker, phaseIdle}

// benchDefaults holds, per flag, the full and the quick default.
var benchDefaults = map[string][2]string{
	"pgbench-scale":   {"10", "1"},
	"pgbench-clients": {"8", "4"},
	"pgbench-time":    {"10s", "2s"},
	"agents":          {"100", "10"},
	"tasks":           {"20000", "1000"},
	"latency-agents":  {"1,10,100", "1,10"},
	"latency-tasks":   {"300", "30"},
	"latency-rate":    {"50", "50"},
	"idle-agents":     {"0,100,1000", "0,50"},
	"idle-window":     {"30s", "3s"},
	"process-tasks":   {"5000", "300"},
	"process-held":    {"250", "20"},
	"docker-runs":     {"20", "3"},
}

func newBenchCmd() *cobra.Command {
	var o benchOpts
	var phases string
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
			if err := applyBenchDefaults(cmd, o.quick); err != nil {
				return err
			}
			f := cmd.Flags()
			var err error
			if o.latencyAgents, err = intList(f.Lookup("latency-agents").Value.String(), "latency-agents", 1); err != nil {
				return err
			}
			if o.idleAgents, err = intList(f.Lookup("idle-agents").Value.String(), "idle-agents", 0); err != nil {
				return err
			}
			if o.phases, err = phaseSet(phases); err != nil {
				return err
			}
			for name, v := range map[string]int{"agents": o.agents, "tasks": o.tasks, "latency-tasks": o.latencyTasks,
				"process-tasks": o.processTasks, "process-held": o.processHeld, "docker-runs": o.dockerRuns, "pgbench-scale": o.pgbenchScale, "pgbench-clients": o.pgbenchClients} {
				if v < 1 {
					return queue.Invalid(name, fmt.Sprintf("--%s must be at least 1", name), "")
				}
			}
			if o.latencyRate <= 0 {
				return queue.Invalid("latency-rate", "--latency-rate must be positive", "give submissions per second, e.g. 50")
			}
			if o.databaseURL == "" {
				v, err := settings(cmd)
				if err != nil {
					return err
				}
				o.databaseURL = v.GetString("database-url")
			}
			return runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.quick, "quick", false, "a small version that runs in about a minute (to check the bench works, not to compare figures)")
	f.StringVar(&o.note, "note", "", "a note about the machine to keep with the figures (e.g. \"2 cores shared with other jobs\")")
	f.StringVar(&o.jsonFile, "json", "", "also write the figures as JSON to this file")
	f.StringVar(&o.databaseURL, "database-url", "", "use this PostgreSQL database instead of a private server (env ORCH_DATABASE_URL)")
	f.StringVar(&o.dataDir, "data-dir", "", "where the private server keeps its data (default: a temporary directory, removed afterwards)")
	f.StringVar(&phases, "phases", strings.Join(allPhases, ","), "phases to run, comma-separated")
	f.IntVar(&o.pgbenchScale, "pgbench-scale", 10, "pgbench scale factor (-s)")
	f.IntVar(&o.pgbenchClients, "pgbench-clients", 8, "pgbench clients (-c)")
	f.DurationVar(&o.pgbenchTime, "pgbench-time", 10*time.Second, "how long pgbench runs (-T)")
	f.IntVar(&o.agents, "agents", 100, "simulated agents for the placement and pipeline phases")
	f.IntVar(&o.tasks, "tasks", 20000, "tasks for the placement phase and again for the pipeline phase")
	f.StringVar(&o.strategy, "strategy", "spread", "placement strategy the bench's coordinators use")
	f.String("latency-agents", "1,10,100", "agent counts to measure create->claimed latency with")
	f.IntVar(&o.latencyTasks, "latency-tasks", 300, "tasks submitted per latency measurement")
	f.Float64Var(&o.latencyRate, "latency-rate", 50, "submissions per second in the latency phase")
	f.String("idle-agents", "0,100,1000", "idle agent counts to measure Postgres CPU with (0: the server alone)")
	f.DurationVar(&o.idleWindow, "idle-window", 30*time.Second, "how long idle Postgres CPU is measured")
	f.DurationVar(&o.heartbeat, "heartbeat-interval", 2*time.Second, "heartbeat interval of the simulated agents (the agent's default)")
	f.Float64Var(&o.maxHeartbeats, "max-heartbeats-per-second", coordinator.DefaultMaxHeartbeatsPerSecond,
		"the cluster's heartbeat limit while agents are idle, as the coordinators' flag (0: none)")
	f.BoolVar(&o.keep, "keep", false, "keep the temporary directory (server data, process logs) and say where it is")
	f.IntVar(&o.processTasks, "process-tasks", 5000, "short tasks run through the coordinator and agent processes")
	f.IntVar(&o.processHeld, "process-held", 250, "containers the agent process holds meanwhile")
	f.IntVar(&o.dockerRuns, "docker-runs", 20, "container starts measured each way in the docker phase")
	f.StringVar(&o.image, "image", "", "image for the docker phase (default: build testdata/workload)")
	return cmd
}

// applyBenchDefaults sets the flags the user did not give to their full or
// quick defaults.
func applyBenchDefaults(cmd *cobra.Command, quick bool) error {
	pick := 0
	if quick {
		pick = 1
	}
	for name, vals := range benchDefaults {
		fl := cmd.Flags().Lookup(name)
		if fl == nil || fl.Changed {
			continue
		}
		if err := fl.Value.Set(vals[pick]); err != nil {
			return fmt.Errorf("bench default for --%s: %w", name, err)
		}
	}
	return nil
}

// intList parses "1,10,100".
func intList(s, field string, least int) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < least {
			return nil, queue.Invalid(field, fmt.Sprintf("%q is not a count of at least %d", part, least), "give counts separated by commas, e.g. 1,10,100")
		}
		out = append(out, n)
	}
	return out, nil
}

func phaseSet(s string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, p := range allPhases {
		known[p] = true
	}
	out := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !known[p] {
			return nil, queue.Invalid("phases", fmt.Sprintf("unknown phase %q", p), "use some of "+strings.Join(allPhases, ","))
		}
		out[p] = true
	}
	return out, nil
}

// runBench runs the phases in order, each against the same server, and
// reports. A phase that fails is recorded and the others still run; the
// command then fails after printing what it measured.
func runBench(ctx context.Context, out, logw io.Writer, o benchOpts) error {
	// Many concurrent API clients in one process: keep their connections
	// instead of opening (and leaving in TIME_WAIT) one per request.
	if tr, ok := http.DefaultTransport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = 256
	}
	b, err := newBench(ctx, logw, o)
	if err != nil {
		return err
	}
	defer b.close()
	b.run(ctx)
	b.report.finish(b)
	if o.jsonFile != "" {
		if err := writeJSONFile(o.jsonFile, b.report); err != nil {
			return err
		}
	}
	if err := b.report.print(out); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(b.report.Errors) > 0 {
		return fmt.Errorf("bench: %d phase(s) failed: %s", len(b.report.Errors), strings.Join(b.report.errorList(), "; "))
	}
	return nil
}

func (b *bench) run(ctx context.Context) {
	steps := []struct {
		phase string
		fn    func(context.Context) error
	}{
		{phasePgbench, b.pgbench},
		{phasePlacement, b.placement},
		{phasePipeline, b.pipeline},
		{phaseProcesses, b.processes},
		{phaseLatency, b.latency},
		{phaseDocker, b.docker},
		{phaseIdle, b.idle},
	}
	for _, s := range steps {
		if !b.opts.phases[s.phase] || ctx.Err() != nil {
			continue
		}
		b.logf("phase %s", s.phase)
		start := time.Now()
		stop := func() {}
		if s.phase != phaseIdle { // idle measures the server's CPU: leave it alone
			stop = b.sampleWaits(ctx, s.phase)
		}
		err := s.fn(ctx)
		stop()
		var skip skipError
		switch {
		case errors.As(err, &skip):
			b.logf("phase %s skipped: %s", s.phase, skip.why)
			b.report.Skipped = append(b.report.Skipped, s.phase+": "+skip.why)
		case err != nil:
			b.logf("phase %s failed: %v", s.phase, err)
			b.report.Errors[s.phase] = err.Error()
		default:
			b.logf("phase %s done in %s", s.phase, time.Since(start).Round(100*time.Millisecond))
		}
	}
}

// skipError says a phase could not run here (no Docker, no pgbench), which
// is not a failure of orch.
type skipError struct{ why string }

func (e skipError) Error() string { return "skipped: " + e.why }

func writeJSONFile(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := printJSON(f, v); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
