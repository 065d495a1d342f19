package agent

import (
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/orchd/orch/queue"
)

func TestAgent_PidsLimit_TaskMayLowerTheNodesNeverRaiseIt(t *testing.T) {
	for _, tc := range []struct {
		node, task, want int64
	}{
		{node: 2048, task: 0, want: 2048},
		{node: 2048, task: 64, want: 64},
		{node: 2048, task: 100000, want: 2048},
		{node: 0, task: 64, want: 64},
		{node: 0, task: 0, want: 0},
	} {
		a := &Agent{opts: Options{PidsLimit: tc.node}}
		got := a.pidsLimit(&queue.Task{TaskSpec: queue.TaskSpec{PidsLimit: tc.task}})
		if got != tc.want {
			t.Errorf("node %d, task %d: %d, want %d", tc.node, tc.task, got, tc.want)
		}
	}
}

func TestDockerConfig_LimitsEveryUnprivilegedContainer(t *testing.T) {
	spec := ContainerSpec{Image: "x", PidsLimit: 100, LogMaxBytes: 10 << 20, LogMaxFiles: 3}
	_, hc, err := dockerConfig(spec, "json-file")
	if err != nil {
		t.Fatal(err)
	}
	if hc.PidsLimit == nil || *hc.PidsLimit != 100 {
		t.Errorf("pids limit %v, want 100", hc.PidsLimit)
	}
	if !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("security options %v lack no-new-privileges", hc.SecurityOpt)
	}
	if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != strconv.Itoa(10<<20) || hc.LogConfig.Config["max-file"] != "3" {
		t.Errorf("log config %+v, want json-file bounded to 3 files of 10 MiB", hc.LogConfig)
	}
	// Another log driver is the operator's: left alone.
	if _, hc, _ := dockerConfig(spec, "journald"); hc.LogConfig.Type != "" || len(hc.LogConfig.Config) != 0 {
		t.Errorf("journald: log config %+v, want the engine's", hc.LogConfig)
	}
	// A privileged container (an admin's, on a node that allows it) is
	// what it asked to be.
	spec.Privileged = true
	if _, hc, _ := dockerConfig(spec, "json-file"); slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("privileged container got no-new-privileges")
	}
}

// A fork bomb in a task container stops at the container's process limit,
// and the node goes on: its engine answers and starts the next container.
func TestDocker_ForkBombStopsAtThePidsLimit(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	spec := d.spec("forkbomb", "-fork-bomb", "-sleep", "forever")
	spec.PidsLimit = 48
	spec.MemoryBytes = 256 << 20
	spec.LogMaxBytes, spec.LogMaxFiles = 1<<20, 2
	id := d.start(ctx, spec)
	d.waitLog(ctx, id, "fork bomb: started")
	info := d.inspect(ctx, id)
	hc := info.HostConfig
	if hc.PidsLimit == nil || *hc.PidsLimit != 48 {
		t.Errorf("the engine has pids limit %v, want 48", hc.PidsLimit)
	}
	if !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("the engine has security options %v, want no-new-privileges", hc.SecurityOpt)
	}
	if driver := hc.LogConfig.Type; (driver == "json-file" || driver == "local") && hc.LogConfig.Config["max-size"] != strconv.Itoa(1<<20) {
		t.Errorf("the engine's %s log files are not bounded: %v", driver, hc.LogConfig.Config)
	}
	logs := d.logs(ctx, id)
	m := regexp.MustCompile(`fork bomb: started (\d+) processes`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no fork bomb report in %q", logs)
	}
	if n, _ := strconv.Atoi(m[1]); n >= 48 {
		t.Errorf("the fork bomb started %d processes, past its limit of 48", n)
	}
	// The node goes on.
	next := d.start(ctx, d.spec("after-bomb", "-logs", "1", "-sleep", "forever"))
	d.waitLog(ctx, next, "line 1")
}
