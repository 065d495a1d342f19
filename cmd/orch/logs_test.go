package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/common/model"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/coordinator/metricstest"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// TestE2E_LogsStatsAndMetrics_AsAUserSeesThem runs one cluster whose agent
// measures every 500 ms, keeps 40 log lines per task and serves metrics,
// and checks through the CLI and HTTP what a user would look at: orch task
// logs (the larger part, so the test lives beside logs.go), the stats of
// task and node get, the --wait status line, /metrics and the status page.
// The subtests build on each other (the counts of /metrics are those of
// the tasks before), so it is one test.
func TestE2E_LogsStatsAndMetrics_AsAUserSeesThem(t *testing.T) {
	t.Parallel()
	metricsAddr := storetest.FreeAddr(t)
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 1,
		agentArgs: []string{"--stats-interval", "500ms", "--log-max-lines", "40", "--metrics-listen", metricsAddr}})
	ctx := context.Background()
	node := c.nodes[0]
	// db reads tables directly, for what neither the CLI nor the API shows.
	db := storetest.Conn(t, c.db)

	t.Run("stats rows appear for a running task and its node", func(t *testing.T) {
		out, code := c.orch("task", "create", "--image", c.image, "--name", "hungry", "--memory", "128MiB", "--wait",
			"--", "-mem", "40MiB", "-sleep", "forever")
		if code != 0 {
			t.Fatalf("create --wait (exit %d):\n%s", code, out)
		}
		// Not a terminal: plain lines, one per change, no carriage returns or escapes.
		if strings.ContainsAny(out, "\r\033") || !strings.Contains(out, "task hungry: running on "+node) {
			t.Errorf("--wait output on a pipe:\n%q", out)
		}
		id := strings.Fields(lastLine(out))[0]
		var taskRows, nodeRows int
		c.eventually(30*time.Second, "stats rows for the task and its node", func() bool {
			_ = db.QueryRow(ctx, `SELECT count(*) FROM task_stats WHERE task_id = $1 AND memory_used_bytes >= 40*1024*1024`, id).Scan(&taskRows)
			_ = db.QueryRow(ctx, `SELECT count(*) FROM node_stats s JOIN nodes n ON n.id = s.node_id WHERE n.name = $1`, node).Scan(&nodeRows)
			return taskRows >= 2 && nodeRows >= 2
		})
		d := c.task(id)
		if d.Usage == nil || d.Usage.MemoryUsedBytes < 40<<20 || d.Usage.MemoryLimitBytes != 128<<20 {
			t.Errorf("task usage = %+v, want at least the 40 MiB the workload holds, limit 128 MiB", d.Usage)
		}
		out, code = c.orch("task", "get", id)
		if code != 0 || !strings.Contains(out, "usage") || !strings.Contains(out, "of 128MiB") {
			t.Errorf("orch task get (exit %d):\n%s", code, out)
		}
		out, code = c.orch("node", "get", node)
		for _, want := range []string{"cpu used", "memory used", "disk used", "RECENT STATS", "reserved"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("orch node get lacks %q (exit %d):\n%s", want, code, out)
			}
		}
		var nd coordinator.NodeDetail
		c.orchJSON(&nd, "node", "get", node)
		if len(nd.Stats) < 2 || nd.Stats[0].MemoryTotalBytes <= 0 || nd.Usage.At == nil || nd.Reserved.MemoryBytes != 128<<20 {
			t.Errorf("node get -o json: %+v", nd)
		}
		out, code = c.orch("task", "delete", "--wait", id)
		if code != 0 || strings.ContainsAny(out, "\r\033") || !strings.Contains(out, "task hungry: stopped") {
			t.Errorf("delete --wait (exit %d):\n%q", code, out)
		}
	})

	t.Run("--wait on a terminal keeps one live status line", func(t *testing.T) {
		scriptBin, err := exec.LookPath("script") // util-linux: runs a command on a pseudo-terminal
		if err != nil {
			t.Skip("script(1) is not installed; the terminal path of --wait is not checked")
		}
		line := orchBin + " task create --image " + c.image + " --name tty --wait -- -sleep forever"
		cmd := exec.Command(scriptBin, "-qec", line, "/dev/null")
		cmd.Env = c.env()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%q", line, err, out)
		}
		text := string(out)
		// The status is redrawn in place (carriage return, erase line) and
		// ends with one newline before the result.
		if !strings.Contains(text, "\r\x1b[Ktask tty: running on "+node) {
			t.Errorf("no in-place status line on a terminal:\n%q", text)
		}
		status, _, _ := strings.Cut(text, "running on "+node)
		if strings.Contains(status, "\n") {
			t.Errorf("status took several lines on a terminal:\n%q", text)
		}
		id := strings.Fields(lastLine(strings.ReplaceAll(text, "\r", "")))[0]
		if _, code := c.orch("task", "delete", "--wait", id); code != 0 {
			t.Errorf("delete %s: exit %d", id, code)
		}
	})

	t.Run("logs come back in order through the CLI", func(t *testing.T) {
		tk := createTask(t, c, "--name", "talker", "--", "-logs", "15", "-stderr-logs", "10")
		id := tk.ID.String()
		if d := c.waitState(id, 60*time.Second, terminal); d.State != queue.Completed {
			t.Fatalf("task ended %s", d.State)
		}
		var page queue.LogPage
		c.orchJSON(&page, "task", "logs", id)
		var stdout, stderr []string
		for _, l := range page.Lines {
			if l.Stream == queue.Stderr {
				stderr = append(stderr, l.Text)
			} else {
				stdout = append(stdout, l.Text)
			}
		}
		if want := numbered(1, 15); !slices.Equal(stdout, want) {
			t.Errorf("stdout lines %q, want %q", stdout, want)
		}
		if want := numbered(1, 10); !slices.Equal(stderr, want) {
			t.Errorf("stderr lines %q, want %q", stderr, want)
		}
		if page.DroppedLines != 0 || page.State != queue.Completed {
			t.Errorf("dropped %d, state %s", page.DroppedLines, page.State)
		}
		// Plain: container stdout to stdout, stderr to stderr.
		stdoutText, stderrText, code := orchSplit(t, c, "task", "logs", id)
		if code != 0 || stdoutText != strings.Join(numbered(1, 15), "\n")+"\n" || stderrText != strings.Join(numbered(1, 10), "\n")+"\n" {
			t.Errorf("orch task logs (exit %d): stdout %q stderr %q", code, stdoutText, stderrText)
		}
		out, code := c.orch("task", "logs", "--tail", "3", id)
		if code != 0 || strings.Count(out, "\n") != 3 {
			t.Errorf("--tail 3 (exit %d):\n%s", code, out)
		}
		// The last three lines of what the daemon recorded, in order.
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || lines[0] != page.Lines[22].Text || lines[2] != page.Lines[24].Text {
			t.Errorf("--tail 3 = %q, want the last 3 of %v", lines, page.Lines)
		}
		out, code = c.orch("task", "logs", "--timestamps", "--tail", "1", id)
		if f := strings.Fields(out); code != 0 || len(f) < 3 {
			t.Errorf("--timestamps: %q", out)
		} else if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Errorf("--timestamps: %q: %v", out, err)
		}
		if _, code := c.orch("task", "logs", "--tail", "-1", id); code != 2 {
			t.Errorf("--tail -1 exits %d, want 2", code)
		}
		if out, code := c.orch("task", "logs", uuid.NewString()); code != 1 || !strings.Contains(out, "not found") {
			t.Errorf("logs of an unknown task (exit %d): %s", code, out)
		}
	})

	t.Run("the cap drops the oldest lines and counts them", func(t *testing.T) {
		tk := createTask(t, c, "--name", "chatty", "--", "-logs", "100")
		id := tk.ID.String()
		c.waitState(id, 60*time.Second, terminal)
		var page queue.LogPage
		c.orchJSON(&page, "task", "logs", id)
		var got []string
		for _, l := range page.Lines {
			got = append(got, l.Text)
		}
		if want := numbered(61, 100); !slices.Equal(got, want) || page.DroppedLines != 60 {
			t.Errorf("kept %q, dropped %d; want lines 61..100 and 60 dropped", got, page.DroppedLines)
		}
		_, stderrText, code := orchSplit(t, c, "task", "logs", id)
		if code != 0 || !strings.Contains(stderrText, "60 older lines were dropped") {
			t.Errorf("orch task logs says (exit %d): %q", code, stderrText)
		}
		var dropped int
		if err := db.QueryRow(ctx, `SELECT dropped_lines FROM report_task_logs WHERE task_id = $1`, id).Scan(&dropped); err != nil || dropped != 60 {
			t.Errorf("report_task_logs.dropped_lines = %d, %v", dropped, err)
		}
	})

	t.Run("--follow streams lines as they arrive and ends when the task ends", func(t *testing.T) {
		tk := createTask(t, c, "--name", "slow", "--", "-logs", "5", "-sleep", "3s", "-exit", "4")
		id := tk.ID.String()
		// Started before the container runs: every line arrives while following.
		cmd := exec.Command(orchBin, "task", "logs", "--follow", id)
		cmd.Env = c.env()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(90 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("--follow did not end within 90 s; output so far:\n%s", out.String())
		}
		ended := time.Now()
		if err != nil {
			t.Fatalf("--follow: %v\n%s", err, out.String())
		}
		got, err2 := c.store.GetTask(ctx, tk.ID)
		if err2 != nil {
			t.Fatal(err2)
		}
		if !got.State.Terminal() || got.FinishedAt == nil || got.FinishedAt.After(ended) {
			t.Errorf("--follow ended at %v while the task is %s (finished %v)", ended, got.State, got.FinishedAt)
		}
		if ended.Sub(*got.FinishedAt) > 10*time.Second {
			t.Errorf("--follow ended %s after the task did", ended.Sub(*got.FinishedAt))
		}
		if want := strings.Join(numbered(1, 5), "\n") + "\n"; out.String() != want {
			t.Errorf("--follow printed %q, want %q", out.String(), want)
		}
	})

	t.Run("/metrics of the coordinator and the agent parse as Prometheus text", func(t *testing.T) {
		cs := scrape(t, c.addrs[0]+"/metrics")
		if v, ok := metricstest.Value(cs, "orch_tasks", map[string]string{"state": "completed"}); !ok || v < 2 {
			t.Errorf("orch_tasks{state=completed} = %v, %v", v, ok)
		}
		if v, _ := metricstest.Value(cs, "orch_nodes", map[string]string{"state": "ready"}); v != 1 {
			t.Errorf("orch_nodes{state=ready} = %v", v)
		}
		if v, _ := metricstest.Value(cs, "orch_api_requests_total", map[string]string{"route": "/tasks", "method": "POST", "code": "201"}); v < 4 {
			t.Errorf("POST /tasks 201 counted %v times", v)
		}
		if v, _ := metricstest.Value(cs, "orch_schedule_pass_duration_seconds_count", nil); v < 1 {
			t.Errorf("no scheduling pass observed")
		}
		as := scrape(t, "http://"+metricsAddr+"/metrics")
		for _, name := range []string{"orch_agent_claims_total", "orch_agent_container_starts_total", "orch_agent_log_lines_shipped_total"} {
			if v, ok := metricstest.Value(as, name, nil); !ok || v < 4 {
				t.Errorf("%s = %v, %v; want at least the 4 tasks of this test", name, v, ok)
			}
		}
		if _, ok := metricstest.Value(as, "orch_agent_container_start_failures_total", nil); !ok {
			t.Errorf("no start failures counter")
		}
		if v, _ := metricstest.Value(as, "orch_agent_container_exits_total", map[string]string{"state": "failed"}); v != 1 {
			t.Errorf("failed exits = %v, want 1 (the -exit 4 task)", v)
		}
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
			for who, samples := range map[string]model.Vector{"coordinator": cs, "agent": as} {
				if v, ok := metricstest.Value(samples, name, nil); !ok || v <= 0 {
					t.Errorf("%s's %s = %v, %v; want the runtime and process collectors' figure", who, name, v, ok)
				}
			}
		}
	})

	t.Run("the status page lists nodes and tasks with links to their logs", func(t *testing.T) {
		resp, err := http.Get(c.addrs[0] + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(body)
		if resp.StatusCode != 200 || !strings.Contains(page, `data-name="`+node+`"`) || !strings.Contains(page, `>talker<`) ||
			!strings.Contains(page, `/logs?format=text">logs</a>`) || !strings.Contains(page, `http-equiv="refresh"`) {
			t.Errorf("GET / (%d):\n%s", resp.StatusCode, page)
		}
	})

	t.Run("an agent without --metrics-listen opens no port", func(t *testing.T) {
		name := "e2e-noport-" + uuid.NewString()[:6]
		c.startAgent(name)
		c.waitNodes(2)
		c.mu.Lock()
		pid := c.procs[name].Process.Pid
		withMetrics := c.procs[node].Process.Pid
		c.mu.Unlock()
		if ports := listeningPorts(t, pid); len(ports) != 0 {
			t.Errorf("agent without --metrics-listen listens on %v", ports)
		}
		// The check can see a listener: the agent with the flag has one.
		if ports := listeningPorts(t, withMetrics); len(ports) != 1 {
			t.Errorf("agent with --metrics-listen listens on %v, want its metrics port", ports)
		}
		c.stop(name, false)
	})
}

func numbered(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

// scrape reads url's metrics as Prometheus would, failing the test if
// they are not the Prometheus text format, and returns their samples.
func scrape(t *testing.T, url string) model.Vector {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET %s: %d %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	_, samples := metricstest.Parse(t, url, string(body))
	return samples
}

// listeningPorts lists the TCP ports a process listens on: its socket
// inodes matched against the kernel's tables of listening sockets.
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("reading the fds of %d: %v", pid, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			p, _ := strconv.ParseInt(hexPort, 16, 32)
			ports = append(ports, int(p))
		}
	}
	return ports
}
