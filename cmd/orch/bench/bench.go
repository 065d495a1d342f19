package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

// Options are the knobs of a run; they mirror the flags of `orch bench`,
// and errors about them name the flag. Start from Defaults: every count and
// duration has a full and a quick value.
type Options struct {
	// Quick marks a small run, to check that the bench works; its figures
	// are not meant to be compared.
	Quick bool
	// Note is a note about the machine to keep with the figures.
	Note string
	// JSONFile, when set, receives the figures as JSON.
	JSONFile string
	// DatabaseURL names an empty database to run against; without it the
	// bench starts a private PostgreSQL in a temporary directory.
	DatabaseURL string
	// DataDir is where the private server keeps its data (default: in the
	// temporary directory, removed afterwards).
	DataDir string
	// Phases are the phases to run, of Phases (nil: all).
	Phases []string
	// Keep keeps the temporary directory (server data, process logs).
	Keep bool
	// CPUProfile, when set, receives a CPU profile of the bench process
	// (its simulated agents and coordinators) for the whole run: with
	// pg_stat_statements, where a task's time goes on the orch side.
	CPUProfile string

	PGBenchScale   int           // pgbench's scale factor (-s)
	PGBenchClients int           // pgbench's clients (-c)
	PGBenchTime    time.Duration // how long pgbench runs (-T)

	Agents int // simulated agents for the placement, pipeline, jobs and drain phases
	// DrainTasks is the backlog of the drain phase, and the jobs River
	// works in the peer-river phase.
	DrainTasks int
	Tasks      int    // tasks for the placement phase and again for the pipeline phase
	Strategy   string // the placement strategy of the bench's coordinators

	LatencyAgents []int   // agent counts to measure create→claimed latency with
	LatencyTasks  int     // tasks submitted per latency measurement
	LatencyRate   float64 // submissions per second in the latency phase

	IdleAgents []int         // idle agent counts to measure Postgres CPU with (0: the server alone)
	IdleWindow time.Duration // how long idle Postgres CPU is measured
	// HeartbeatInterval is that of the simulated agents.
	HeartbeatInterval time.Duration
	// MaxHeartbeatsPerSecond is the cluster's heartbeat limit while agents
	// are idle, as the coordinators' (0: no limit).
	MaxHeartbeatsPerSecond float64
	// MaxHeartbeatInterval bounds the interval that limit asks for, as
	// the coordinators' (0: no bound).
	MaxHeartbeatInterval time.Duration

	// JobServices services of JobTasks tasks each run as jobs in the jobs
	// phase (by Agents simulated agents), against as many plain tasks.
	JobServices int
	JobTasks    int

	// FleetAgents are the fleet sizes of the fleet phase (PgBouncer, a
	// coordinator process, agents that long-poll it); FleetWindow is how
	// long a settled fleet's cost is measured, FleetTasks the tasks whose
	// create→claimed is measured across it, FleetKill the agents killed at
	// once, FleetBeatTime how long the heartbeat's cost is measured.
	FleetAgents   []int
	FleetWindow   time.Duration
	FleetTasks    int
	FleetKill     int
	FleetBeatTime time.Duration

	ProcessTasks int // short tasks run through the coordinator and agent processes
	ProcessHeld  int // containers the agent process holds meanwhile

	// RetentionTasks finished tasks are stored, then deleted by the
	// retention, while placements are timed (and RetentionPasses before
	// it); a pass is then timed behind RetentionWaiting restarts in backoff.
	RetentionTasks   int
	RetentionWaiting int
	RetentionPasses  int

	DockerRuns int    // container starts measured each way in the docker phase
	Image      string // image for the docker phase (default: build testdata/workload)

	// Orch is the orch binary whose coordinator and agent processes the
	// bench starts (default: this program, os.Executable).
	Orch string
	// Out receives the table of figures (nil: none is printed).
	Out io.Writer
	// Log receives what the bench is doing (nil: discarded).
	Log io.Writer
}

// Bench phases, in the order they run.
const (
	phasePgbench   = "pgbench"
	phasePeerRiver = "peer-river"
	phaseDrain     = "drain"
	phasePlacement = "placement"
	phasePipeline  = "pipeline"
	phaseJobs      = "jobs"
	phaseIdle      = "idle"
	phaseProcesses = "processes"
	phaseLatency   = "latency"
	phaseDocker    = "docker"
	phaseRetention = "retention"
	phaseFleet     = "fleet"
)

// Phases are the bench's phases in the order they run. The idle and fleet
// phases come last: their thousands of agents leave thousands of nodes
// behind, which every later scheduling pass would read.
var Phases = []string{phasePgbench, phasePeerRiver, phaseDrain, phasePlacement, phasePipeline, phaseJobs, phaseProcesses, phaseLatency, phaseDocker, phaseRetention, phaseIdle, phaseFleet}

// Defaults are the options of a full run, or with quick of a small one that
// runs in about a minute.
func Defaults(quick bool) Options {
	o := Options{
		Phases:   append([]string(nil), Phases...),
		Strategy: "spread", LatencyRate: 50,
		HeartbeatInterval: agent.DefaultHeartbeatInterval, MaxHeartbeatsPerSecond: coordinator.DefaultMaxHeartbeatsPerSecond,
		MaxHeartbeatInterval: coordinator.DefaultMaxHeartbeatInterval,
	}
	if quick {
		o.Quick = true
		o.PGBenchScale, o.PGBenchClients, o.PGBenchTime = 1, 4, 2*time.Second
		o.Agents, o.Tasks, o.DrainTasks = 10, 1000, 5000
		o.LatencyAgents, o.LatencyTasks = []int{1, 10}, 30
		o.IdleAgents, o.IdleWindow = []int{0, 50}, 3*time.Second
		o.JobServices, o.JobTasks = 20, 10
		o.FleetAgents, o.FleetWindow, o.FleetTasks, o.FleetKill, o.FleetBeatTime = []int{20, 100}, 3*time.Second, 20, 3, time.Second
		o.ProcessTasks, o.ProcessHeld = 300, 20
		o.DockerRuns = 3
		o.RetentionTasks, o.RetentionWaiting, o.RetentionPasses = 20_000, 2_000, 10
		return o
	}
	o.PGBenchScale, o.PGBenchClients, o.PGBenchTime = 10, 8, 10*time.Second
	o.Agents, o.Tasks, o.DrainTasks = 100, 20000, 50000
	o.LatencyAgents, o.LatencyTasks = []int{1, 10, 100}, 300
	o.IdleAgents, o.IdleWindow = []int{0, 100, 1000}, 30*time.Second
	o.JobServices, o.JobTasks = 1000, 10
	o.FleetAgents, o.FleetWindow, o.FleetTasks, o.FleetKill, o.FleetBeatTime = []int{1000, 10000}, 120*time.Second, 300, 10, 5*time.Second
	o.ProcessTasks, o.ProcessHeld = 5000, 250
	o.DockerRuns = 20
	o.RetentionTasks, o.RetentionWaiting, o.RetentionPasses = 1_000_000, 20_000, 30
	return o
}

// check refuses options no run can use, naming the flag.
func (o *Options) check() error {
	for name, v := range map[string]int{"agents": o.Agents, "tasks": o.Tasks, "latency-tasks": o.LatencyTasks,
		"process-tasks": o.ProcessTasks, "process-held": o.ProcessHeld, "docker-runs": o.DockerRuns, "pgbench-scale": o.PGBenchScale, "pgbench-clients": o.PGBenchClients,
		"drain-tasks": o.DrainTasks, "job-services": o.JobServices, "job-tasks": o.JobTasks, "fleet-tasks": o.FleetTasks, "fleet-kill": o.FleetKill, "retention-tasks": o.RetentionTasks, "retention-waiting": o.RetentionWaiting, "retention-passes": o.RetentionPasses} {
		if v < 1 {
			return queue.Invalid(name, fmt.Sprintf("--%s must be at least 1", name), "")
		}
	}
	if o.LatencyRate <= 0 {
		return queue.Invalid("latency-rate", "--latency-rate must be positive", "give submissions per second, e.g. 50")
	}
	for _, n := range o.LatencyAgents {
		if n < 1 {
			return queue.Invalid("latency-agents", fmt.Sprintf("%d is not a count of at least 1", n), "")
		}
	}
	for _, n := range o.IdleAgents {
		if n < 0 {
			return queue.Invalid("idle-agents", fmt.Sprintf("%d is not a count of at least 0", n), "")
		}
	}
	for _, n := range o.FleetAgents {
		if n < 1 {
			return queue.Invalid("fleet-agents", fmt.Sprintf("%d is not a count of at least 1", n), "")
		}
	}
	if o.FleetWindow <= 0 || o.FleetBeatTime <= 0 {
		return queue.Invalid("fleet-window", "--fleet-window and --fleet-beat-time must be positive", "e.g. 120s and 5s")
	}
	for _, p := range o.Phases {
		if !isPhase(p) {
			return queue.Invalid("phases", fmt.Sprintf("unknown phase %q", p), "use some of "+strings.Join(Phases, ","))
		}
	}
	return nil
}

func isPhase(p string) bool {
	for _, known := range Phases {
		if p == known {
			return true
		}
	}
	return false
}

// Run runs the phases in order, each against the same server, then writes
// the figures to o.JSONFile and prints them to o.Out. A phase that fails is
// recorded and the others still run; Run then returns the report with an
// error that names the failed phases. It returns no report when it could
// not start (a bad option, no server).
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Phases == nil {
		o.Phases = Phases
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Orch == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the orch binary: %w", err)
		}
		o.Orch = exe
	}
	// Many concurrent API clients in one process: keep their connections
	// instead of opening (and leaving in TIME_WAIT) one per request.
	// The fleet phase's agents long-poll one coordinator, each with a
	// connection of its own, as on machines of their own.
	if tr, ok := http.DefaultTransport.(*http.Transport); ok {
		largest := 0
		if slices.Contains(o.Phases, phaseFleet) {
			for _, n := range o.FleetAgents {
				largest = max(largest, n)
			}
		}
		tr.MaxIdleConnsPerHost = max(256, largest+256)
		tr.MaxIdleConns = max(tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	}
	b, err := newBench(ctx, o)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if o.CPUProfile != "" {
		stop, err := startCPUProfile(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	b.run(ctx)
	b.report.finish(b)
	if o.JSONFile != "" {
		if err := writeJSONFile(o.JSONFile, b.report); err != nil {
			return b.report, err
		}
	}
	if o.Out != nil {
		if err := b.report.Print(o.Out); err != nil {
			return b.report, err
		}
	}
	if ctx.Err() != nil {
		return b.report, ctx.Err()
	}
	if len(b.report.Errors) > 0 {
		return b.report, fmt.Errorf("bench: %d phase(s) failed: %s", len(b.report.Errors), strings.Join(b.report.errorList(), "; "))
	}
	return b.report, nil
}

func (b *bench) run(ctx context.Context) {
	steps := []struct {
		phase string
		fn    func(context.Context) error
	}{
		{phasePgbench, b.pgbench},
		{phasePeerRiver, b.peerRiver},
		{phaseDrain, b.drain},
		{phasePlacement, b.placement},
		{phasePipeline, b.pipeline},
		{phaseJobs, b.jobs},
		{phaseProcesses, b.processes},
		{phaseLatency, b.latency},
		{phaseDocker, b.docker},
		{phaseRetention, b.retention},
		{phaseIdle, b.idle},
		{phaseFleet, b.fleetPhase},
	}
	want := map[string]bool{}
	for _, p := range b.opts.Phases {
		want[p] = true
	}
	for _, s := range steps {
		if !want[s.phase] || ctx.Err() != nil {
			continue
		}
		b.logf("phase %s", s.phase)
		start := time.Now()
		stop := func() {}
		if s.phase != phaseIdle && s.phase != phaseFleet { // they measure the server's CPU: leave it alone
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
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
