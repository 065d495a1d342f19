package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/orchd/orch/queue/postgres"
)

// Report is everything `orch bench` measured; the table and the JSON
// show the same figures. A phase that did not run leaves its field nil.
type Report struct {
	Quick     bool             `json:"quick"`
	Note      string           `json:"note,omitempty"`
	StartedAt time.Time        `json:"started_at"`
	DurationS float64          `json:"duration_s"`
	Machine   MachineInfo      `json:"machine"`
	Server    ServerInfo       `json:"server"`
	PGBench   *PGBenchResult   `json:"pgbench,omitempty"`
	PeerRiver *PeerResult      `json:"peer_river,omitempty"`
	Drain     *DrainResult     `json:"drain,omitempty"`
	Placement *PlacementResult `json:"placement,omitempty"`
	Pipeline  *PipelineResult  `json:"pipeline,omitempty"`
	Jobs      *JobsResult      `json:"jobs,omitempty"`
	Idle      []IdleResult     `json:"idle,omitempty"`
	Fleet     []FleetResult    `json:"fleet,omitempty"`
	// RoundTripServerCPU is the server CPU, in microseconds, of one empty
	// query: a yardstick for the idle figures on this machine.
	RoundTripServerCPU float64 `json:"round_trip_server_cpu_us,omitempty"`
	// ColdRoundTripServerCPU is the same on a connection idle for 2 s.
	ColdRoundTripServerCPU float64                  `json:"cold_round_trip_server_cpu_us,omitempty"`
	Processes              *ProcessesResult         `json:"processes,omitempty"`
	Latency                []LatencyResult          `json:"latency,omitempty"`
	Docker                 *DockerResult            `json:"docker,omitempty"`
	Retention              *RetentionResult         `json:"retention,omitempty"`
	Targets                []Target                 `json:"targets"`
	Statements             []postgres.StatementStat `json:"top_statements,omitempty"`
	Waits                  []PhaseWaits             `json:"wait_events,omitempty"`
	Skipped                []string                 `json:"skipped,omitempty"`
	Errors                 map[string]string        `json:"errors,omitempty"`
}

// MachineInfo describes the machine the bench ran on.
type MachineInfo struct {
	OS          string     `json:"os"`
	Arch        string     `json:"arch"`
	CPUs        int        `json:"cpus"`
	CPUModel    string     `json:"cpu_model,omitempty"`
	MemoryBytes int64      `json:"memory_bytes,omitempty"`
	LoadStart   [3]float64 `json:"load_avg_start"`
	LoadEnd     [3]float64 `json:"load_avg_end"`
}

// ServerInfo describes the PostgreSQL server the bench ran against.
type ServerInfo struct {
	Version  string            `json:"version"`
	Private  bool              `json:"private"`
	Settings map[string]string `json:"settings"`
}

// PGBenchResult is the machine's commit rate by pgbench's TPC-B-like test.
type PGBenchResult struct {
	Scale   int     `json:"scale"`
	Clients int     `json:"clients"`
	Seconds int     `json:"seconds"`
	TPS     float64 `json:"tps"`
}

// PlacementResult is how fast one coordinator placed a backlog.
type PlacementResult struct {
	Nodes            int     `json:"nodes"`
	Tasks            int     `json:"tasks"`
	Passes           int     `json:"passes"`
	CreatesPerSec    float64 `json:"creates_per_s"`
	PlacementsPerSec float64 `json:"placements_per_s"`
	RunPerSec        float64 `json:"backlog_run_per_s"`
}

// PipelineResult is tasks run end to end through the API by simulated
// agents, and what each cost the database.
type PipelineResult struct {
	Agents int `json:"agents"`
	Tasks  int `json:"tasks"`
	// Batch tasks go in one request (POST /tasks with an array), from
	// Clients clients.
	Batch         int     `json:"api_batch"`
	Clients       int     `json:"api_clients"`
	Seconds       float64 `json:"seconds"`
	TasksPerSec   float64 `json:"tasks_per_s"`
	CreatesPerSec float64 `json:"api_creates_per_s"`
	// PerTask... are a sample of PerTaskSample tasks submitted one per
	// request from 16 clients, before the batched run.
	PerTaskSample        int     `json:"per_task_sample"`
	PerTaskTasksPerSec   float64 `json:"per_task_tasks_per_s"`
	PerTaskCreatesPerSec float64 `json:"per_task_api_creates_per_s"`
	WriteTxnsPerTask     float64 `json:"write_txns_per_task"`
	RowsWrittenPerTask   float64 `json:"rows_written_per_task"`
	WALBytesPerTask      float64 `json:"wal_bytes_per_task"`
	WALSyncsPerTask      float64 `json:"wal_flushes_per_task"`
	HOTUpdatePercent     float64 `json:"hot_update_percent"`
	// CommitShare is tasks/s × write transactions per task ÷ pgbench TPS:
	// the share of the machine's commit rate the pipeline used.
	CommitShare float64 `json:"commit_share_of_pgbench,omitempty"`
}

// IdleResult is what idle agents cost the server, for one number of agents.
type IdleResult struct {
	Agents              int     `json:"agents"`
	Backends            int     `json:"server_processes"`
	WindowSec           float64 `json:"window_s"`
	PostgresCPUSec      float64 `json:"postgres_cpu_s"`
	PostgresCorePercent float64 `json:"postgres_core_percent"`
	WakeupsPerSec       float64 `json:"server_wakeups_per_s"`
	AgentsCorePercent   float64 `json:"bench_process_core_percent"`
	WriteTxnsPerSec     float64 `json:"write_txns_per_s"`
	WALSyncsPerSec      float64 `json:"wal_flushes_per_s"`
	HOTUpdatePercent    float64 `json:"hot_update_percent"`
	HeartbeatSec        float64 `json:"heartbeat_interval_s"`
	// NotifyServerCPU is the server CPU, in microseconds, that one NOTIFY
	// on a channel no agent listens on cost with these agents listening,
	// sent at NotifyRate a second.
	NotifyServerCPU float64 `json:"notify_server_cpu_us"`
	NotifyRate      float64 `json:"notify_rate_per_s"`
}

// ProcessesResult is the peak memory of a coordinator and an agent process
// under load.
type ProcessesResult struct {
	Held               int     `json:"held_containers"`
	Tasks              int     `json:"tasks"`
	TasksPerSec        float64 `json:"tasks_per_s"`
	AgentPeakRSS       int64   `json:"agent_memory_runtime_rss_peak_bytes"`
	CoordinatorPeakRSS int64   `json:"coordinator_rss_peak_bytes"`
}

// LatencyResult is create→claimed latency with one number of agents.
type LatencyResult struct {
	Agents     int     `json:"agents"`
	Tasks      int     `json:"tasks"`
	RatePerSec float64 `json:"rate_per_s"`
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	MeanMS     float64 `json:"mean_ms"`
}

// DockerResult compares create→running through orch with `docker run`.
type DockerResult struct {
	Image             string  `json:"image"`
	Runs              int     `json:"runs"`
	OrchMedianMS      float64 `json:"orch_create_to_running_median_ms"`
	OrchDBMedianMS    float64 `json:"orch_db_create_to_running_median_ms"`
	DockerRunMedianMS float64 `json:"docker_run_median_ms"`
	EngineAPIMedianMS float64 `json:"engine_api_median_ms"`
	Ratio             float64 `json:"ratio_orch_to_docker_run"`
	AgentPeakRSS      int64   `json:"agent_docker_runtime_rss_peak_bytes"`
}

// Target is one of orch's performance targets and whether this run met it.
// Met is nil when the run did not measure it.
type Target struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Met    *bool  `json:"met"`
}

func newReport(o Options) *Report {
	r := &Report{Quick: o.Quick, Note: o.Note, StartedAt: time.Now().UTC(), Errors: map[string]string{}}
	r.Machine = MachineInfo{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), LoadStart: loadAvg()}
	r.Machine.CPUModel, r.Machine.MemoryBytes = cpuModel(), memTotal()
	return r
}

// finish reads the figures that come from the run as a whole and checks
// the targets.
func (r *Report) finish(b *bench) {
	r.DurationS = time.Since(r.StartedAt).Seconds()
	r.Machine.LoadEnd = loadAvg()
	b.mu.Lock()
	coord := b.coord
	b.mu.Unlock()
	if coord != nil {
		b.noteCoordinatorRSS(coord)
	}
	if r.Pipeline != nil && r.PGBench != nil && r.PGBench.TPS > 0 {
		r.Pipeline.CommitShare = r.Pipeline.TasksPerSec * r.Pipeline.WriteTxnsPerTask / r.PGBench.TPS
	}
	if r.Drain != nil && r.PeerRiver != nil && r.PeerRiver.JobsPerSec > 0 {
		r.Drain.RiverJobsPS = r.PeerRiver.JobsPerSec
		r.Drain.RiverRatio = r.Drain.LifecyclesPerSec / r.PeerRiver.JobsPerSec
	}
	if b.statements {
		if st, err := b.store.TopStatements(context.Background(), 10); err == nil {
			r.Statements = st
		}
	}
	r.Targets = r.checkTargets()
}

func (r *Report) checkTargets() []Target {
	var out []Target
	add := func(name, target, value string, measured, met bool) {
		t := Target{Name: name, Target: target, Value: value}
		if measured {
			t.Met = &met
		} else {
			t.Value = "not measured"
		}
		out = append(out, t)
	}
	if d, p := r.Drain, r.PeerRiver; d != nil && p != nil {
		add("lifecycles/s ÷ River jobs/s, drain shape", "≥ 1.0×", fmt.Sprintf("%.2f× (%.0f ÷ %.0f)", d.RiverRatio, d.LifecyclesPerSec, p.JobsPerSec),
			true, d.RiverRatio >= 1.0)
	} else {
		add("lifecycles/s ÷ River jobs/s, drain shape", "≥ 1.0×", "", false, false)
	}
	if pl, p := r.Pipeline, r.PeerRiver; pl != nil && p != nil && p.JobsPerSec > 0 {
		ratio := pl.TasksPerSec / p.JobsPerSec
		add("lifecycles/s through the API ÷ River jobs/s", "≥ 0.5×", fmt.Sprintf("%.2f×", ratio), true, ratio >= 0.5)
	}
	if d := r.Drain; d != nil {
		add("write transactions per task, drain shape", "≤ 2", fmt.Sprintf("%.2f", d.WriteTxnsPerTask), true, d.WriteTxnsPerTask <= 2)
	}
	// The yardstick of placement is the machine's insert rate of task rows:
	// the drain phase's batched submission, in the same run.
	if p, d := r.Placement, r.Drain; p != nil && d != nil && d.SubmitPerSec > 0 {
		ratio := p.PlacementsPerSec / d.SubmitPerSec
		add("placements/s ÷ task rows inserted/s in batches", "≥ 0.5×", fmt.Sprintf("%.2f× (%.0f ÷ %.0f)", ratio, p.PlacementsPerSec, d.SubmitPerSec), true, ratio >= 0.5)
	} else {
		add("placements/s ÷ task rows inserted/s in batches", "≥ 0.5×", "", false, false)
	}
	if len(r.Latency) == 0 {
		add("create→claimed p50 / p99", "≤ 3 / ≤ 20 ms", "", false, false)
	}
	for _, l := range r.Latency {
		add(fmt.Sprintf("create→claimed p50 / p99, %d agent(s)", l.Agents), "≤ 3 / ≤ 20 ms",
			fmt.Sprintf("%.1f / %.1f ms", l.P50MS, l.P99MS), true, l.P50MS <= 3 && l.P99MS <= 20)
	}
	if d := r.Docker; d != nil {
		add("create→running vs docker run", "≤ 1.10×", fmt.Sprintf("%.2f×", d.Ratio), true, d.Ratio <= 1.10)
	} else {
		add("create→running vs docker run", "≤ 1.10×", "", false, false)
	}
	var idle *IdleResult
	for i := range r.Idle {
		if r.Idle[i].Agents >= 1000 {
			idle = &r.Idle[i]
		}
	}
	if idle != nil {
		add(fmt.Sprintf("%d idle agents, Postgres CPU", idle.Agents), "≤ 10% of a core",
			fmt.Sprintf("%.1f%%", idle.PostgresCorePercent), true, idle.PostgresCorePercent <= 10)
	} else {
		add("1000 idle agents, Postgres CPU", "≤ 10% of a core", "", false, false)
	}
	for _, f := range r.Fleet {
		// The CPU targets hold on a machine of one's own: the bench says
		// so, with the load average, and leaves the judging to the reader
		// when others share it.
		add(fmt.Sprintf("fleet of %d: client backends", f.Agents), "≤ 200", fmt.Sprint(f.ClientBackends), true, f.ClientBackends <= 200)
		want := 20.0
		if f.Agents <= 1000 {
			want = 5
		}
		add(fmt.Sprintf("fleet of %d: idle Postgres CPU (load %.1f)", f.Agents, f.LoadAvg[0]), fmt.Sprintf("≤ %.0f%% of a core", want),
			fmt.Sprintf("%.1f%%", f.PostgresCorePercent), true, f.PostgresCorePercent <= want)
		add(fmt.Sprintf("fleet of %d: killed agents' nodes down", f.Agents), "≤ 30 s", fmt.Sprintf("%.1f s (%d killed)", f.DetectMaxSec, f.Killed),
			f.Killed > 0, f.DetectMaxSec <= 30)
	}
	if rt := r.Retention; rt != nil {
		add(fmt.Sprintf("/metrics scrape over %d finished tasks (max of 20)", rt.FinishedTasks), "≤ 50 ms",
			fmt.Sprintf("%.1f ms", rt.ScrapeMaxMS), true, rt.ScrapeMaxMS <= 50)
		ratio := rt.PassP99DuringMS / rt.PassP99BeforeMS
		add("pass p99 while the retention deletes ÷ before", "≤ 2×", fmt.Sprintf("%.2f×", ratio), true, ratio <= 2)
		w := rt.PassWithWaitingMS / rt.PassWithoutWaitingMS
		add(fmt.Sprintf("pass behind %d restarts in backoff ÷ without", rt.Waiting), "≤ 1.2×", fmt.Sprintf("%.2f×", w), true, w <= 1.2)
	} else {
		add("/metrics scrape over 1M finished tasks", "≤ 50 ms", "", false, false)
	}
	const mb = 1_000_000
	if p := r.Processes; p != nil {
		add("agent peak RSS (memory runtime)", "≤ 30 MB", fmtMB(p.AgentPeakRSS), true, p.AgentPeakRSS <= 30*mb)
	}
	if d := r.Docker; d != nil {
		add("agent peak RSS (Docker runtime)", "≤ 30 MB", fmtMB(d.AgentPeakRSS), true, d.AgentPeakRSS <= 30*mb)
	}
	if p := r.Processes; p != nil {
		add("coordinator peak RSS", "≤ 50 MB", fmtMB(p.CoordinatorPeakRSS), true, p.CoordinatorPeakRSS <= 50*mb)
	} else {
		add("agent and coordinator peak RSS", "≤ 30 / ≤ 50 MB", "", false, false)
	}
	return out
}

func fmtMB(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

func (r *Report) errorList() []string {
	var out []string
	for phase, msg := range r.Errors {
		out = append(out, phase+": "+firstLine(msg))
	}
	sort.Strings(out)
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) error {
	m := r.Machine
	kind := "private server"
	if !r.Server.Private {
		kind = "server given by --database-url"
	}
	model := m.CPUModel
	if model == "" {
		model = "-"
	}
	fmt.Fprintf(w, "orch bench%s, %s: %s/%s, %d CPUs (%s), %.1f GiB; load average %.2f at start, %.2f at end\n",
		map[bool]string{true: " --quick", false: ""}[r.Quick], r.StartedAt.Format(time.RFC3339), m.OS, m.Arch, m.CPUs,
		model, float64(m.MemoryBytes)/(1<<30), m.LoadStart[0], m.LoadEnd[0])
	fmt.Fprintf(w, "PostgreSQL %s (%s; fsync=%s, synchronous_commit=%s, shared_buffers=%s)\n", r.Server.Version, kind,
		r.Server.Settings["fsync"], r.Server.Settings["synchronous_commit"], r.Server.Settings["shared_buffers"])
	if r.Note != "" {
		fmt.Fprintf(w, "note: %s\n", r.Note)
	}
	fmt.Fprintln(w)
	// Aligned columns, as the CLI's tables.
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	row("FIGURE", "VALUE")
	if p := r.PGBench; p != nil {
		row(fmt.Sprintf("pgbench TPC-B-like (scale %d, %d clients, %d s)", p.Scale, p.Clients, p.Seconds), fmt.Sprintf("%.0f TPS", p.TPS))
	}
	if p := r.PeerRiver; p != nil {
		row(fmt.Sprintf("River %s: %d no-op jobs, one client, %d workers: jobs/s worked (inserted in %.1f s)", p.Version, p.Jobs, p.Workers, p.InsertSeconds),
			fmt.Sprintf("%.0f", p.JobsPerSec))
	}
	if d := r.Drain; d != nil {
		row(fmt.Sprintf("drain: %d tasks submitted in batches of %d (tasks/s)", d.Tasks, drainBatch), fmt.Sprintf("%.0f", d.SubmitPerSec))
		row(fmt.Sprintf("  then run by %d agents: lifecycles/s (%.1f s)", d.Agents, d.Seconds), fmt.Sprintf("%.0f", d.LifecyclesPerSec))
		if d.RiverRatio > 0 {
			row("  ÷ River's jobs/s", fmt.Sprintf("%.2f×", d.RiverRatio))
		}
		row("  write transactions; rows written; per task", fmt.Sprintf("%.2f; %.1f", d.WriteTxnsPerTask, d.RowsWrittenPerTask))
		row("  WAL per task; WAL flushes per task", fmt.Sprintf("%.0f bytes; %.3f", d.WALBytesPerTask, d.WALSyncsPerTask))
		row(fmt.Sprintf("  a task submitted meanwhile waits to be claimed (%d): p50 / p99", d.Probes), fmt.Sprintf("%.0f / %.0f ms", d.ProbeP50MS, d.ProbeP99MS))
	}
	if p := r.Placement; p != nil {
		row(fmt.Sprintf("creates/s (store, %d tasks, 16 clients)", p.Tasks), fmt.Sprintf("%.0f", p.CreatesPerSec))
		row(fmt.Sprintf("placements/s (backlog of %d onto %d nodes, %d passes)", p.Tasks, p.Nodes, p.Passes), fmt.Sprintf("%.0f", p.PlacementsPerSec))
		row(fmt.Sprintf("backlog claimed and run/s (%d agents)", p.Nodes), fmt.Sprintf("%.0f", p.RunPerSec))
	}
	if p := r.Pipeline; p != nil {
		row(fmt.Sprintf("tasks/s end to end (API, %d agents, %d tasks, %d per request)", p.Agents, p.Tasks, p.Batch), fmt.Sprintf("%.0f", p.TasksPerSec))
		if r.PeerRiver != nil && r.PeerRiver.JobsPerSec > 0 {
			row("  ÷ River's jobs/s", fmt.Sprintf("%.2f×", p.TasksPerSec/r.PeerRiver.JobsPerSec))
		}
		row(fmt.Sprintf("  API creates/s meanwhile (%d clients)", p.Clients), fmt.Sprintf("%.0f", p.CreatesPerSec))
		row(fmt.Sprintf("  one task per request (%d tasks, 16 clients): tasks/s end to end; API creates/s", p.PerTaskSample),
			fmt.Sprintf("%.0f; %.0f", p.PerTaskTasksPerSec, p.PerTaskCreatesPerSec))
		row("  write transactions per task", fmt.Sprintf("%.2f", p.WriteTxnsPerTask))
		row("  rows written per task", fmt.Sprintf("%.1f", p.RowsWrittenPerTask))
		row("  WAL per task; WAL flushes per task", fmt.Sprintf("%.0f bytes; %.2f", p.WALBytesPerTask, p.WALSyncsPerTask))
		row("  HOT updates", fmt.Sprintf("%.0f%%", p.HOTUpdatePercent))
		if p.CommitShare > 0 {
			row("  tasks/s × writes per task ÷ pgbench TPS", fmt.Sprintf("%.2f", p.CommitShare))
		}
	}
	if j := r.Jobs; j != nil {
		row(fmt.Sprintf("jobs: %d services × %d tasks (%d agents): job run of all → all running", j.Services, j.Tasks/max(j.Services, 1), j.Agents),
			fmt.Sprintf("%.1f s", j.RunSec))
		row(fmt.Sprintf("  placements/s through jobs; through %d plain API tasks", j.Tasks),
			fmt.Sprintf("%.0f; %.0f", j.JobPlacementsPerSec, j.PlainPlacementsPerSec))
		row("  jobs ÷ plain tasks (target ≥ 0.8×)", fmt.Sprintf("%.2f×", j.Ratio))
		row(fmt.Sprintf("  rolling update of all %d services, max_parallel %d", j.Services, j.UpdateParallel), fmt.Sprintf("%.1f s", j.UpdateSec))
	}
	for _, l := range r.Latency {
		row(fmt.Sprintf("create→claimed, %d agent(s), %d tasks at %.0f/s: p50 / p99 / max", l.Agents, l.Tasks, l.RatePerSec),
			fmt.Sprintf("%.1f / %.1f / %.1f ms", l.P50MS, l.P99MS, l.MaxMS))
	}
	if r.RoundTripServerCPU > 0 {
		row("server CPU per empty query round trip: warm; on a connection idle for 2 s",
			fmt.Sprintf("%.0f µs; %.0f µs", r.RoundTripServerCPU, r.ColdRoundTripServerCPU))
	}
	for _, i := range r.Idle {
		row(fmt.Sprintf("idle, %d agent(s) beating every %gs, %.0f s: Postgres CPU (%d server processes)", i.Agents, i.HeartbeatSec, i.WindowSec, i.Backends),
			fmt.Sprintf("%.2f%% of a core", i.PostgresCorePercent))
		if i.Agents > 0 {
			row("  write transactions/s; WAL flushes/s; HOT updates; server process wake-ups/s",
				fmt.Sprintf("%.0f; %.0f; %.0f%%; %.0f", i.WriteTxnsPerSec, i.WALSyncsPerSec, i.HOTUpdatePercent, i.WakeupsPerSec))
			row("  the simulated agents themselves (bench process CPU)", fmt.Sprintf("%.1f%% of a core", i.AgentsCorePercent))
		}
		row(fmt.Sprintf("  server CPU per NOTIFY nobody listens to, %.0f/s", i.NotifyRate), fmt.Sprintf("%.0f µs", i.NotifyServerCPU))
	}
	for _, f := range r.Fleet {
		row(fmt.Sprintf("fleet of %d agents through PgBouncer (%d per pgx pool, %d pooler client connections): client backends; server processes",
			f.Agents, f.AgentsPerPool, f.PoolerClients), fmt.Sprintf("%d; %d", f.ClientBackends, f.ServerProcesses))
		row("  heartbeat: at most (32 clients); server CPU of one", fmt.Sprintf("%.0f/s; %.0f µs", f.BeatsPerSec, f.BeatServerCPU))
		row(fmt.Sprintf("  idle, beating every %gs, %.0f s after settling, load average %.2f: Postgres CPU", f.HeartbeatSec, f.WindowSec, f.LoadAvg[0]),
			fmt.Sprintf("%.2f%% of a core", f.PostgresCorePercent))
		row("  PgBouncer; the coordinator process; the agents (bench process)",
			fmt.Sprintf("%.2f%%; %.2f%%; %.1f%% of a core", f.PoolerCorePercent, f.CoordinatorCorePercent, f.AgentsCorePercent))
		row("  write transactions/s; HOT updates", fmt.Sprintf("%.0f; %.0f%%", f.WriteTxnsPerSec, f.HOTUpdatePercent))
		row("  the agents' process RSS; per agent", fmt.Sprintf("%s; %.0f kB", fmtMB(f.RSSBytes), float64(f.RSSBytes)/float64(max(f.Agents, 1))/1e3))
		if f.Tasks > 0 {
			row(fmt.Sprintf("  create→claimed across the fleet, %d tasks: p50 / p99 / max", f.Tasks), fmt.Sprintf("%.1f / %.1f / %.1f ms", f.P50MS, f.P99MS, f.MaxMS))
		}
		if f.Killed > 0 {
			row(fmt.Sprintf("  %d agents killed at once: their nodes down after (node-down timeout %gs)", f.Killed, f.NodeDownTimeout),
				fmt.Sprintf("%.1f–%.1f s", f.DetectMinSec, f.DetectMaxSec))
		}
	}
	if p := r.Processes; p != nil {
		row(fmt.Sprintf("processes: %d tasks through a coordinator and an agent process holding %d containers", p.Tasks, p.Held),
			fmt.Sprintf("%.0f tasks/s", p.TasksPerSec))
		row("  agent peak RSS (memory runtime)", fmtMB(p.AgentPeakRSS))
		row("  coordinator peak RSS (whole run)", fmtMB(p.CoordinatorPeakRSS))
	}
	if d := r.Docker; d != nil {
		row(fmt.Sprintf("create→running through orch, median of %d", d.Runs), fmt.Sprintf("%.0f ms (database clock: %.0f ms)", d.OrchMedianMS, d.OrchDBMedianMS))
		row(fmt.Sprintf("docker run -d, median of %d", d.Runs), fmt.Sprintf("%.0f ms", d.DockerRunMedianMS))
		row(fmt.Sprintf("engine API create+start, median of %d", d.Runs), fmt.Sprintf("%.0f ms", d.EngineAPIMedianMS))
		row("  ratio orch ÷ docker run", fmt.Sprintf("%.2f", d.Ratio))
		row("  agent peak RSS (Docker runtime)", fmtMB(d.AgentPeakRSS))
	}
	if rt := r.Retention; rt != nil {
		row(fmt.Sprintf("retention: %d finished tasks stored", rt.FinishedTasks), fmt.Sprintf("%.0f tasks/s", rt.SeedPerSec))
		row("  /metrics scrape: the first (counts everything once); then p50 / max of 20",
			fmt.Sprintf("%.1f ms; %.1f / %.1f ms", rt.ScrapeFirstMS, rt.ScrapeP50MS, rt.ScrapeMaxMS))
		row("  deleted by the retention, in batches of 500, while placing", fmt.Sprintf("%d at %.0f tasks/s", rt.Deleted, rt.DeletedPerSec))
		row(fmt.Sprintf("  pass of 50: p50 / p99 before (%d passes); while deleting (%d)", rt.PassesBefore, rt.PassesDuring),
			fmt.Sprintf("%.1f / %.1f ms; %.1f / %.1f ms", rt.PassP50BeforeMS, rt.PassP99BeforeMS, rt.PassP50DuringMS, rt.PassP99DuringMS))
		row(fmt.Sprintf("  pass of %d behind %d restarts in backoff; behind none", rt.Ready, rt.Waiting),
			fmt.Sprintf("%.1f ms; %.1f ms", rt.PassWithWaitingMS, rt.PassWithoutWaitingMS))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row("TARGET", "WANT", "GOT", "MET")
	for _, tg := range r.Targets {
		met := "-"
		if tg.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*tg.Met]
		}
		row(tg.Name, tg.Target, tg.Value, met)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Waits) > 0 {
		fmt.Fprintln(w, "\nwhat busy backends waited for (pg_stat_activity, sampled every 200 ms):")
		for _, pw := range r.Waits {
			parts := make([]string, 0, len(pw.Top))
			for _, ws := range pw.Top {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", ws.Event, ws.Percent))
			}
			fmt.Fprintf(w, "  %-10s %4.1f active: %s\n", pw.Phase, pw.Busy, strings.Join(parts, ", "))
		}
	}
	if len(r.Statements) > 0 {
		fmt.Fprintln(w, "\ntop statements by execution time (pg_stat_statements, whole run):")
		for i, st := range r.Statements {
			if i == 5 {
				break
			}
			fmt.Fprintf(w, "  %8.0f ms %8d calls %7.3f ms each  %s\n", st.TotalMS, st.Calls, st.MeanMS, shorten(st.Query, 90))
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintln(w, "skipped:", s)
	}
	for _, e := range r.errorList() {
		fmt.Fprintln(w, "FAILED:", e)
	}
	return nil
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func loadAvg() [3]float64 {
	var out [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		out[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return out
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
