package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/agent/dockertest"
)

// TestBench_QuickRunWritesEveryFigure runs a quick bench end to end, as CI
// does to keep the bench working, with the orch binary built from this
// tree for its coordinator and agent processes. Timings are not judged (the
// machine may be busy); what is checked is that every phase ran and
// reported figures that make sense, in the table and in the JSON.
func TestBench_QuickRunWritesEveryFigure(t *testing.T) {
	t.Parallel()
	dockertest.Require(t) // the docker phase needs the engine, as in production
	jsonFile := filepath.Join(t.TempDir(), "bench.json")
	_, stdout := runQuick(t, "orch bench --quick", func(o *Options) { o.Note, o.JSONFile = "go test", jsonFile })
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("the JSON does not decode: %v\n%s", err, b)
	}

	check := func(what string, v float64) {
		t.Helper()
		if !(v > 0) || v > 1e12 {
			t.Errorf("%s = %v, want a positive figure", what, v)
		}
	}
	if len(r.Errors) > 0 || len(r.Skipped) > 0 {
		t.Errorf("errors %v, skipped %v: every phase should have run", r.Errors, r.Skipped)
	}
	if !r.Quick || r.Note != "go test" || r.Machine.CPUs < 1 || r.Server.Version == "" || !r.Server.Private {
		t.Errorf("header: quick %v, note %q, %d CPUs, server %q private %v", r.Quick, r.Note, r.Machine.CPUs, r.Server.Version, r.Server.Private)
	}
	if r.Server.Settings["fsync"] != "on" {
		t.Errorf("the private server runs with fsync=%q; figures must come from durable settings", r.Server.Settings["fsync"])
	}
	if p := r.PGBench; p == nil {
		t.Error("no pgbench figures")
	} else {
		check("pgbench TPS", p.TPS)
	}
	if p := r.Placement; p == nil {
		t.Error("no placement figures")
	} else {
		check("creates/s", p.CreatesPerSec)
		check("placements/s", p.PlacementsPerSec)
		check("backlog run/s", p.RunPerSec)
	}
	if p := r.Pipeline; p == nil {
		t.Error("no pipeline figures")
	} else {
		check("tasks/s", p.TasksPerSec)
		check("API creates/s", p.CreatesPerSec)
		check("WAL bytes per task", p.WALBytesPerTask)
		check("commit share", p.CommitShare)
		// A task is at least its create, claim, start and exit, each a
		// row change with its event row; the changes of many tasks share
		// transactions (batches, group commits), but never none.
		if p.WriteTxnsPerTask <= 0 || p.RowsWrittenPerTask < 8 {
			t.Errorf("%.2f write transactions and %.1f rows per task: too few to be real", p.WriteTxnsPerTask, p.RowsWrittenPerTask)
		}
	}
	if j := r.Jobs; j == nil {
		t.Error("no jobs figures")
	} else {
		check("placements/s through jobs", j.JobPlacementsPerSec)
		check("placements/s of plain tasks", j.PlainPlacementsPerSec)
		check("jobs ÷ plain", j.Ratio)
		check("job run → all running", j.RunSec)
		check("rolling update", j.UpdateSec)
		if j.Services != 20 || j.Tasks != 200 {
			t.Errorf("jobs phase: %d services, %d tasks; want --quick's 20 of 10", j.Services, j.Tasks)
		}
	}
	if len(r.Latency) != 2 || r.Latency[0].Agents != 1 || r.Latency[1].Agents != 10 {
		t.Errorf("latency for %+v, want 1 and 10 agents", r.Latency)
	}
	for _, l := range r.Latency {
		check("create→claimed p50", l.P50MS)
		if l.P99MS < l.P50MS || l.MaxMS < l.P99MS || l.Tasks != 30 {
			t.Errorf("latency with %d agents: p50 %.1f, p99 %.1f, max %.1f over %d tasks", l.Agents, l.P50MS, l.P99MS, l.MaxMS, l.Tasks)
		}
	}
	if len(r.Idle) != 2 || r.Idle[0].Agents != 0 || r.Idle[1].Agents != 50 {
		t.Errorf("idle for %+v, want 0 and 50 agents", r.Idle)
	} else {
		i := r.Idle[1]
		check("idle Postgres CPU", i.PostgresCPUSec)
		check("idle write transactions/s", i.WriteTxnsPerSec) // heartbeats
		if i.Backends <= r.Idle[0].Backends+50 {
			t.Errorf("%d server processes with 50 agents, %d without: each agent holds connections", i.Backends, r.Idle[0].Backends)
		}
	}
	checkFleet(t, r)
	const mb = 1 << 20
	if p := r.Processes; p == nil {
		t.Error("no process figures")
	} else {
		check("processes tasks/s", p.TasksPerSec)
		if p.Held != 20 {
			t.Errorf("the agent process held %d containers, want --quick's 20", p.Held)
		}
		for what, rss := range map[string]int64{"agent": p.AgentPeakRSS, "coordinator": p.CoordinatorPeakRSS} {
			if rss < mb || rss > 4096*mb {
				t.Errorf("%s peak RSS %d bytes", what, rss)
			}
		}
	}
	if d := r.Docker; d == nil {
		t.Error("no docker figures")
	} else {
		check("orch create→running", d.OrchMedianMS)
		check("orch create→running by the database", d.OrchDBMedianMS)
		check("docker run", d.DockerRunMedianMS)
		check("engine API", d.EngineAPIMedianMS)
		check("ratio", d.Ratio)
		if d.AgentPeakRSS < mb {
			t.Errorf("docker agent peak RSS %d bytes", d.AgentPeakRSS)
		}
	}
	if len(r.Targets) < 7 {
		t.Errorf("%d targets checked, want every target of the issue", len(r.Targets))
	}
	for _, tg := range r.Targets {
		if !strings.Contains(stdout, tg.Name) {
			t.Errorf("target %q is in the JSON but not in the table", tg.Name)
		}
	}
	for _, want := range []string{"pgbench", "placements/s", "tasks/s end to end", "placements/s through jobs", "rolling update", "create→claimed", "idle", "peak RSS", "docker run"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the table has no %q line", want)
		}
	}
}

// TestBench_FleetPhase_ThroughPgBouncer runs the quick fleet phase alone:
// fleets of 20 and 100 simulated agents through PgBouncer, long-polling a
// coordinator process.
func TestBench_FleetPhase_ThroughPgBouncer(t *testing.T) {
	t.Parallel()
	r, stdout := runQuick(t, "orch bench --quick --phases fleet", func(o *Options) { o.Phases = []string{phaseFleet} })
	if len(r.Skipped) > 0 {
		t.Fatalf("skipped: %v", r.Skipped)
	}
	checkFleet(t, *r)
	for _, want := range []string{"fleet of 100 agents through PgBouncer", "killed at once", "create→claimed across the fleet"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the table has no %q line", want)
		}
	}
}

// runQuick builds orch from this tree and runs a quick bench with it, its
// options as set changes them. It returns the report and the table, which
// it also logs under title.
func runQuick(t *testing.T, title string, set func(o *Options)) (*Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	orch := filepath.Join(t.TempDir(), "orch")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", orch, "github.com/orchd/orch/cmd/orch").CombinedOutput(); err != nil {
		t.Fatalf("building orch: %v\n%s", err, out)
	}
	o := Defaults(true)
	o.Orch = orch
	set(&o)
	var stdout bytes.Buffer
	o.Out, o.Log = &stdout, t.Output()
	r, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stdout.String())
	}
	t.Logf("%s:\n%s", title, stdout.String())
	return r, stdout.String()
}

// checkFleet checks the quick fleet phase's figures: both fleets, few
// backends whatever the fleet, every killed node noticed.
func checkFleet(t *testing.T, r Report) {
	t.Helper()
	if len(r.Fleet) != 2 || r.Fleet[0].Agents != 20 || r.Fleet[1].Agents != 100 {
		t.Fatalf("fleet figures for %+v, want fleets of 20 and 100", r.Fleet)
	}
	for _, f := range r.Fleet {
		if f.ClientBackends < 1 || f.ClientBackends > 2*fleetPoolSize+10 {
			t.Errorf("fleet of %d: %d client backends, want at most PgBouncer's %d and the bench's own", f.Agents, f.ClientBackends, 2*fleetPoolSize)
		}
		if f.PoolerClients < f.Agents/f.AgentsPerPool {
			t.Errorf("fleet of %d: %d pooler client connections, want one a pool at least", f.Agents, f.PoolerClients)
		}
		if !(f.BeatsPerSec > 0) || !(f.BeatServerCPU > 0) || !(f.PostgresCorePercent > 0) || !(f.AgentsCorePercent >= 0) {
			t.Errorf("fleet of %d: beats %.0f/s at %.0f µs, Postgres %.2f%%: want positive figures", f.Agents, f.BeatsPerSec, f.BeatServerCPU, f.PostgresCorePercent)
		}
		if f.Tasks != 20 || !(f.P50MS > 0) || f.P99MS < f.P50MS || f.MaxMS < f.P99MS {
			t.Errorf("fleet of %d: create→claimed over %d tasks p50 %.1f p99 %.1f max %.1f", f.Agents, f.Tasks, f.P50MS, f.P99MS, f.MaxMS)
		}
		// Down once silent for the node-down timeout, measured from the kill.
		if f.Killed != 3 || f.DetectMinSec < f.NodeDownTimeout-f.HeartbeatSec || f.DetectMaxSec > f.NodeDownTimeout+f.HeartbeatSec+5 {
			t.Errorf("fleet of %d: %d killed, down after %.1f–%.1f s (timeout %gs, beating every %gs)", f.Agents, f.Killed, f.DetectMinSec, f.DetectMaxSec, f.NodeDownTimeout, f.HeartbeatSec)
		}
		if f.RSSBytes < 1<<20 {
			t.Errorf("fleet of %d: RSS %d bytes", f.Agents, f.RSSBytes)
		}
	}
}
