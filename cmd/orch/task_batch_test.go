package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// orch task create --count and -f submit many tasks in requests of 1000,
// check a file before sending any of it, and name a task an error is about
// by its index.
func TestE2E_TaskCreate_CountAndFile(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 0})
	dir := t.TempDir()

	var shards []queue.Task
	c.orchJSON(&shards, "task", "create", "--count", "3", "--name", "shard", "--image", c.image, "--", "-sleep", "1s")
	if len(shards) != 3 || shards[0].Name != "shard-1" || shards[2].Name != "shard-3" || shards[1].Command[1] != "1s" {
		t.Fatalf("--count 3 --name shard: %+v", shards)
	}

	// A YAML file with ids: sending it again changes nothing.
	ids := []string{uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()}
	yml := filepath.Join(dir, "tasks.yaml")
	writeFile(t, yml, fmt.Sprintf(`
- id: %s
  name: web
  image: %s
  cpu: 500m
  env: {MODE: prod}
- id: %s
  image: %s
  command: ["-sleep", "2s"]
`, ids[0], c.image, ids[1], c.image))
	for try := range 2 {
		out, code := c.orch("task", "create", "-f", yml)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], ids[0]+"\tweb\t") || !strings.HasPrefix(lines[1], ids[1]) {
			t.Fatalf("-f tasks.yaml, try %d: exit %d\n%s", try+1, code, out)
		}
	}
	if web := c.task("web"); web.ID.String() != ids[0] || web.Resources.CPUMillis != 500 || web.Env["MODE"] != "prod" {
		t.Errorf("web from the file: %+v", web.Task)
	}

	// From standard input, as JSON; a bad task stops the file before any
	// of it is sent.
	var fromStdin []queue.Task
	stdout, stderr, code := orchStdin(t, c, `[{"name": "in-1", "image": "`+c.image+`"}, {"name": "in-2", "image": "`+c.image+`"}]`,
		"-o", "json", "task", "create", "-f", "-")
	if code != 0 || json.Unmarshal([]byte(stdout), &fromStdin) != nil || len(fromStdin) != 2 || fromStdin[1].Name != "in-2" {
		t.Fatalf("-f - : exit %d %s %s", code, stdout, stderr)
	}
	before := len(snapshot(t, c))
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, `[{"image": "`+c.image+`"}, {"image": "`+c.image+`"}, {"image": "`+c.image+`", "cpu": "lots"}]`)
	if out, code := c.orch("task", "create", "-f", bad); code != 2 || strings.TrimSpace(out) != "orch: "+bad+`: [2].cpu: "lots" is not a CPU amount (give cores like 0.5 or millicores like 500m)` {
		t.Errorf("a bad task in the file: exit %d %q, want exit 2 naming [2].cpu", code, out)
	}
	for _, body := range []string{`{"image": "x"}`, `- image: a` + "\n" + `  colour: red`, `[]`} {
		writeFile(t, bad, body)
		if out, code := c.orch("task", "create", "-f", bad); code != 2 {
			t.Errorf("file %q: exit %d %q, want 2", body, code, out)
		}
	}
	if after := len(snapshot(t, c)); after != before {
		t.Errorf("bad files stored %d tasks", after-before)
	}

	// More than one request: progress on stderr; a conflict in the second
	// names the task by its index in the whole submission.
	stdout, stderr, code = orchSplit(t, c, "task", "create", "--count", "1001", "--image", c.image)
	if code != 0 || strings.Count(stdout, "\n") != 1001 || !strings.Contains(stderr, "created 1000 of 1001 tasks") {
		t.Fatalf("--count 1001: exit %d, %d lines, stderr %q", code, strings.Count(stdout, "\n"), stderr)
	}
	var many strings.Builder
	many.WriteString("[")
	for range 1000 {
		fmt.Fprintf(&many, `{"image": %q},`, c.image)
	}
	fmt.Fprintf(&many, `{"name": "shard-2", "image": %q}]`, c.image)
	writeFile(t, bad, many.String())
	_, stderr, code = orchSplit(t, c, "task", "create", "-f", bad)
	if code != 1 || !strings.Contains(stderr, "[1000]: conflict: task "+shards[1].ID.String()) || !strings.Contains(stderr, "tasks [0] to [999] were created") {
		t.Errorf("a taken name in the second request: exit %d %q", code, stderr)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// orchStdin runs the CLI with stdin as its standard input.
func orchStdin(t *testing.T, c *cluster, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(orchBin, args...)
	cmd.Env = c.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	var ee *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}
