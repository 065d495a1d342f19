package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/agent/dockertest"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/proc"
	"github.com/orchd/orch/queue/postgres/storetest"
)

// devRig runs orch dev as a user would, on a data directory and a config
// home of its own and a free port, and the CLI and curl against it.
type devRig struct {
	t       *testing.T
	dataDir string
	home    string
	addr    string // host:port of the API
	node    string
	cmd     *exec.Cmd
	mu      sync.Mutex
	out     bytes.Buffer
	exited  chan struct{}
}

func newDevRig(t *testing.T) *devRig {
	t.Helper()
	dockertest.Require(t)
	root := t.TempDir()
	// The private PostgreSQL runs as the postgres OS user when we are root:
	// it must reach the data directory.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &devRig{t: t, dataDir: filepath.Join(root, "data"), home: filepath.Join(root, "home"),
		addr: storetest.FreeAddr(t), node: "dev-" + proc.RandomHex(4)}
	t.Cleanup(func() {
		var ids []string
		if nodes, err := d.nodes(); err == nil {
			for _, n := range nodes {
				ids = append(ids, n.ID.String())
			}
		}
		d.stop()
		if t.Failed() {
			t.Logf("---- orch dev ----\n%s", d.output())
		}
		// orch dev leaves task containers running, for the next start.
		for _, id := range ids {
			if _, err := dockertest.CleanupContainers(context.Background(), dockertest.Require(t), map[string]string{agent.LabelNode: id}); err != nil {
				t.Errorf("removing the containers of node %s: %v", id, err)
			}
		}
	})
	return d
}

func (d *devRig) env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORCH_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			out = append(out, kv)
		}
	}
	return append(out, "XDG_CONFIG_HOME="+d.home, "ORCH_ADDR=http://"+d.addr)
}

func (d *devRig) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

type devWriter struct{ d *devRig }

func (w devWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.out.Write(p)
}

// start runs orch dev with extra flags and waits until its API answers.
func (d *devRig) start(extra ...string) {
	d.t.Helper()
	d.mu.Lock()
	d.out.Reset()
	d.mu.Unlock()
	args := append([]string{"dev", "--data-dir", d.dataDir, "--listen", d.addr, "--name", d.node,
		"--cpu", "2", "--memory", "4GiB", "--disk", "10GiB"}, extra...)
	d.cmd = exec.Command(orchBin, args...)
	d.cmd.Env = d.env()
	d.cmd.Stdout, d.cmd.Stderr = devWriter{d}, devWriter{d}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(d.cmd, d.exited)
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(d.output(), "task containers keep running and are adopted at the next start") {
		select {
		case <-d.exited:
			d.t.Fatalf("orch dev exited:\n%s", d.output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("orch dev did not start:\n%s", d.output())
		}
	}
}

// stop presses Ctrl-C and waits for orch dev to end.
func (d *devRig) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(60 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

// dbURL is the database URL orch dev printed.
func (d *devRig) dbURL() string {
	d.t.Helper()
	m := regexp.MustCompile(`database +(postgres://\S+)`).FindStringSubmatch(d.output())
	if m == nil {
		d.t.Fatalf("orch dev printed no database URL:\n%s", d.output())
	}
	return m[1]
}

// sh runs a shell command line as a user would type it, with the API's
// address in place of the README's localhost:8989; it returns stdout.
func (d *devRig) sh(line string) string {
	d.t.Helper()
	line = strings.NewReplacer("localhost:8989", d.addr, "127.0.0.1:8989", d.addr).Replace(line)
	cmd := exec.Command("sh", "-c", line)
	cmd.Env = append(d.env(), "HOME="+filepath.Dir(d.home))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		d.t.Fatalf("%s: %v\n%s%s", line, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func (d *devRig) orch(args ...string) (string, int) {
	d.t.Helper()
	cmd := exec.Command(orchBin, args...)
	cmd.Env = d.env()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		d.t.Fatal(err)
	}
	return string(out), 0
}

func (d *devRig) nodes() ([]queue.Node, error) {
	cmd := exec.Command(orchBin, "-o", "json", "node", "list")
	cmd.Env = d.env()
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	var ns []queue.Node
	return ns, json.Unmarshal(out, &ns)
}

// The book's calls, as its README has them (its POST names no URL: the
// book's manager listens on localhost:8989, as orch dev does; its DELETE
// names another task than the one it created, so it deletes the created
// one here).
const (
	bookPost = `curl -s -o /dev/null -w '%{http_code}' --request POST \
  --header 'Content-Type: application/json' \
  --data '{
    "ID": "266592cd-960d-4091-981c-8c25c44b1018",
    "State": 2,
    "Task": {
        "State": 1,
        "ID": "266592cd-960d-4091-981c-8c25c44b1018",
        "Name": "task-1",
        "Image": "strm/helloworld-http"
    }
}' localhost:8989/tasks`
	bookList   = `curl http://localhost:8989/tasks |jq .`
	bookDelete = `curl -s -o /dev/null -w '%{http_code}' --request DELETE "localhost:8989/tasks/266592cd-960d-4091-981c-8c25c44b1018"`
)

// orch dev as nomad agent -dev: open on loopback, so the book's calls and
// the README's work as written; a restart keeps the PostgreSQL port, the
// token (when tokens are on) and the running tasks, whose containers the
// agent adopts.
func TestE2E_Dev_OpenOnLoopbackAndTheSameAfterARestart(t *testing.T) {
	t.Parallel()
	image := dockertest.BuildWorkload(t)
	d := newDevRig(t)
	d.start()

	if code := d.sh(bookPost); code != "201" {
		t.Fatalf("the book's POST /tasks: %s, want 201", code)
	}
	var tasks []queue.Task
	if err := json.Unmarshal([]byte(d.sh(bookList)), &tasks); err != nil || len(tasks) != 1 || tasks[0].Name != "task-1" {
		t.Fatalf("the book's GET /tasks | jq: %v %+v, want a JSON array of task-1", err, tasks)
	}
	// A user types the DELETE after a while: the image could not be
	// pulled (no registry here) or it runs; either way the task ends.
	deadline := time.Now().Add(3 * time.Minute)
	var book queue.Task
	for {
		out, _ := d.orch("-o", "json", "task", "get", "task-1")
		_ = json.Unmarshal([]byte(out), &book)
		if book.State.Terminal() || book.State == queue.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task-1 never got anywhere: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// 200 for a task that has ended (here, without a registry, the pull
	// failed); 202 if the image could be pulled and the task runs.
	want := "200"
	if book.State == queue.Running {
		want = "202"
	}
	if code := d.sh(bookDelete); code != want {
		t.Fatalf("the book's DELETE of a %s task: %s, want %s", book.State, code, want)
	}

	// The README's curl examples against the API, as written.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range readmeCurls(string(readme)) {
		out := d.sh(line + ` -w '\n%{http_code}'`)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code := lines[len(lines)-1]; !strings.HasPrefix(code, "2") {
			t.Errorf("README: %s\n→ %s", line, out)
		}
		var tk queue.Task
		if json.Unmarshal([]byte(strings.Join(lines[:len(lines)-1], "\n")), &tk) == nil && tk.Name != "" {
			d.orch("task", "delete", tk.Name)
		}
	}

	// A running task, to be adopted across the restart.
	out, code := d.orch("task", "create", "--image", image, "--name", "keeper", "--wait", "--", "-sleep", "forever")
	if code != 0 {
		t.Fatalf("task create: exit %d\n%s", code, out)
	}
	before := devTask(t, d, "keeper")
	db := d.dbURL()
	d.stop()
	if !strings.Contains(d.output(), "task containers keep running") {
		t.Errorf("Ctrl-C did not say that task containers keep running:\n%s", d.output())
	}
	d.start()
	if got := d.dbURL(); got != db {
		t.Errorf("after a restart the database is %s, want %s as before", got, db)
	}
	// The new agent adopts the container: the task keeps it and its attempt.
	deadline = time.Now().Add(60 * time.Second)
	for !strings.Contains(d.output(), "adopted running container") {
		if time.Now().After(deadline) {
			t.Fatalf("the agent adopted nothing after the restart:\n%s", d.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after := devTask(t, d, "keeper"); after.State != queue.Running || after.ContainerID != before.ContainerID || after.Attempt != before.Attempt {
		t.Fatalf("keeper after the restart: %s attempt %d container %s; before: attempt %d container %s",
			after.State, after.Attempt, after.ContainerID, before.Attempt, before.ContainerID)
	}

	// With --token, the API wants the token, the CLI finds it, and a
	// restart keeps it.
	d.stop()
	d.start("--token")
	if resp, err := http.Get("http://" + d.addr + "/tasks"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /tasks without a token under --token: %v %v, want 401", resp, err)
	}
	tok1 := devTokenOf(t, d)
	if out, code := d.orch("task", "get", "keeper"); code != 0 {
		t.Fatalf("the CLI under --token: exit %d\n%s", code, out)
	}
	d.stop()
	d.start("--token")
	if tok2 := devTokenOf(t, d); tok2 != tok1 {
		t.Errorf("the token changed across a restart")
	}
	if got := d.dbURL(); got != db {
		t.Errorf("after a second restart the database is %s, want %s", got, db)
	}
	if out := d.sh(`curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat ~/home/orch/token)" localhost:8989/tasks`); out != "200" {
		t.Errorf("curl with the kept token: %s", out)
	}
}

func devTask(t *testing.T, d *devRig, name string) queue.Task {
	t.Helper()
	out, code := d.orch("-o", "json", "task", "get", name)
	var tk queue.Task
	if err := json.Unmarshal([]byte(out), &tk); code != 0 || err != nil {
		t.Fatalf("task get %s: exit %d %v\n%s", name, code, err, out)
	}
	return tk
}

func devTokenOf(t *testing.T, d *devRig) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.home, "orch", "token"))
	if err != nil {
		t.Fatalf("the token orch dev --token stored for the CLI: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// readmeCurls returns the curl command lines of the README's sh blocks
// that call the API on localhost:8989, with their continuation lines.
func readmeCurls(readme string) []string {
	var out []string
	inSh := false
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readme))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(line, "```"):
			inSh = false
			continue
		}
		if !inSh {
			continue
		}
		if cur.Len() == 0 && !strings.HasPrefix(line, "curl ") {
			continue
		}
		cont := strings.HasSuffix(strings.TrimRight(line, " "), `\`)
		cur.WriteString(strings.TrimSuffix(strings.TrimRight(line, " "), `\`))
		if cont || strings.Count(cur.String(), "'")%2 == 1 { // a quoted string goes on
			cur.WriteString("\n")
			continue
		}
		if c := cur.String(); strings.Contains(c, "localhost:8989") || strings.Contains(c, "127.0.0.1:8989") {
			out = append(out, c)
		}
		cur.Reset()
	}
	return out
}
