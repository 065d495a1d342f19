package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// TestE2E_BadInput_EachRefusedWithItsExactError sends malformed and hostile
// input through the API and the CLI. Every one is refused with its own exact
// error (HTTP 400/413 with a JSON body naming the field; CLI exit code 2 and a
// one-line message), and what was stored before is unchanged afterwards.
func TestE2E_BadInput_EachRefusedWithItsExactError(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 0})
	ctx := context.Background()
	keep := createTask(t, c, "--name", "keep", "--env", "QUOTE=it's \"quoted\"; DROP TABLE tasks;--")
	hostile := createTask(t, c, "--name", "hostile", "--label", "note=ünïcødé 🚀 ' OR 1=1", "--", "-logs", "1", "; rm -rf /")
	before := snapshot(t, c)

	long := strings.Repeat("n", 200)
	api := []struct {
		body, contentType string
		status            int
		field, err        string
	}{
		{`{`, "", 400, "body", "malformed JSON at byte 1: unexpected end of JSON input"},
		{`{"image":"alpine"} x`, "", 400, "body", "malformed JSON at byte 20: invalid character 'x' after top-level value"},
		{`[1,2]`, "", 400, "[0]", "wrong type: got a JSON number, want an object"},
		{`[{"image":"alpine"},{"name":"no-image"}]`, "", 400, "[1].image", "image is required"},
		{`[]`, "", 400, "body", "the array holds no task"},
		{`{"image":""}`, "", 400, "image", "image is required"},
		{`{"name":"no-image"}`, "", 400, "image", "image is required"},
		{`{"image":"Alpine"}`, "", 400, "image", `"Alpine" is not a valid image reference: invalid reference format: repository name (library/Alpine) must be lowercase`},
		{`{"image":"a b"}`, "", 400, "image", `"a b" is not a valid image reference: invalid reference format`},
		{`{"image":42}`, "", 400, "image", "wrong type: got a JSON number, want a string"},
		{`{"image":"alpine","cpu":-1}`, "", 400, "cpu", `CPU "-1" is negative`},
		{`{"image":"alpine","cpu":"lots"}`, "", 400, "cpu", `"lots" is not a CPU amount`},
		{`{"image":"alpine","cpu":true}`, "", 400, "cpu", "wrong type: got a JSON boolean, want a string"},
		{`{"image":"alpine","cpu":5000}`, "", 400, "cpu", "CPU 5000 cores is more than any node offers (limit 1024)"},
		{`{"image":"alpine","memory":"5XB"}`, "", 400, "memory", `unknown unit "XB" in "5XB"`},
		{`{"image":"alpine","memory":1024}`, "", 400, "memory", "memory 1KiB is below Docker's minimum of 6MiB"},
		{`{"image":"alpine","memory":"1e400"}`, "", 400, "memory", `"1e400" is not a number`},
		{`{"image":"alpine","memory":"999PiB"}`, "", 400, "memory", "memory 999PiB is more than any node offers (limit 64TiB)"},
		{`{"image":"alpine","disk":"-1G"}`, "", 400, "disk", `size "-1G" is negative`},
		{`{"image":"alpine","colour":1}`, "", 400, "colour", `unknown field "colour"`},
		{`{"image":"alpine","name":"a b"}`, "", 400, "name", `name "a b" has characters outside [a-zA-Z0-9_.-] or does not start with a letter or digit`},
		{`{"image":"alpine","name":"x'; DROP TABLE tasks;--"}`, "", 400, "name", `name "x'; DROP TABLE tasks;--" has characters outside [a-zA-Z0-9_.-] or does not start with a letter or digit`},
		{`{"image":"alpine","name":"` + long + `"}`, "", 400, "name", "name is 200 bytes long, the limit is 128"},
		{`{"image":"alpine","env":{"1A":"x"}}`, "", 400, "env", `environment variable name "1A" is not valid`},
		{`{"image":"alpine","env":{"A":1}}`, "", 400, "env", "wrong type: got a JSON number, want a string"},
		{`{"image":"alpine","command":"ls"}`, "", 400, "command", "wrong type: got a JSON string, want an array"},
		{`{"image":"alpine","restart_policy":"sometimes"}`, "", 400, "restart_policy", `unknown restart policy "sometimes"`},
		{`{"image":"alpine","max_restarts":-1}`, "", 400, "max_restarts", "max_restarts -1 is outside 0..1000"},
		{`{"image":"alpine","ports":[{"container_port":0}]}`, "", 400, "ports", "container port 0 is outside 1..65535"},
		{`{"image":"alpine","ports":[{"container_port":80,"host_port":70000}]}`, "", 400, "ports", "host port 70000 is outside 1..65535"},
		{`{"image":"alpine","ports":[{"container_port":80,"protocol":"sctp"}]}`, "", 400, "ports", `protocol "sctp" is not tcp or udp`},
		{`{"image":"alpine","labels":{"bad key":"v"}}`, "", 400, "labels", `label key "bad key" is not valid`},
		{`{"image":"alpine","stop_after_disconnect":"soon"}`, "", 400, "stop_after_disconnect", `"soon" is not a duration`},
		{`{"image":"alpine","stop_after_disconnect":"10ms"}`, "", 400, "stop_after_disconnect", "10ms is outside 1s..1h"},
		{`{"id":"nope","image":"alpine"}`, "", 400, "id", `"nope" is not a UUID`},
		{`{"id":"` + keep.ID.String() + `","image":"alpine"}`, "", 409, "", ""},
		{`{"Task":5}`, "", 400, "Task", "wrong type: got a JSON number, want an object"},
		{`{"Task":{"Image":"alpine","RestartPolicy":"weird"}}`, "", 400, "Task.RestartPolicy", `unknown restart policy "weird"`},
		{`{"Task":{"Image":"alpine","PortBindings":{"x/tcp":"80"}}}`, "", 400, "Task.PortBindings", `port "x/tcp" is not PORT[/PROTO]`},
		{`{"image":"alpine"}`, "text/plain", 415, "Content-Type", `content type "text/plain" is not JSON`},
		{`{"image":"alpine","name":"` + strings.Repeat("x", 2<<20) + `"}`, "", 413, "", "request body is larger than 1 MiB"},
	}
	for _, tc := range api {
		ct := tc.contentType
		if ct == "" {
			ct = "application/json"
		}
		resp, err := http.Post(c.addrs[0]+"/tasks", ct, bytes.NewBufferString(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var eb struct{ Error, Field, Hint string }
		derr := json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		short := tc.body
		if len(short) > 70 {
			short = short[:70] + "…"
		}
		if resp.StatusCode != tc.status || derr != nil {
			t.Errorf("%s → %d (%v), want %d", short, resp.StatusCode, derr, tc.status)
			continue
		}
		if tc.err != "" && (eb.Field != tc.field || eb.Error != tc.err || eb.Hint == "" && (tc.status == 400 || tc.status == 415)) {
			t.Errorf("%s →\n  got  field %q error %q hint %q\n  want field %q error %q", short, eb.Field, eb.Error, eb.Hint, tc.field, tc.err)
		}
	}

	cli := []struct {
		args []string
		want string
	}{
		{[]string{"task", "create"}, "orch: image: image is required (give a container image, e.g. --image alpine:3.20)"},
		{[]string{"task", "create", "--image", "Not An Image"}, `orch: image: "Not An Image" is not a valid image reference: invalid reference format: repository name (library/Not An Image) must be lowercase (use name[:tag][@digest], lower-case, e.g. registry.example.com/team/app:1.2)`},
		{[]string{"task", "create", "--image", "alpine", "--cpu", "-2"}, `orch: cpu: CPU "-2" is negative (give cores like 0.5 or millicores like 500m)`},
		{[]string{"task", "create", "--image", "alpine", "--memory", "lots"}, `orch: memory: "lots" is not a size (give a size like 512MiB or 2G)`},
		{[]string{"task", "create", "--image", "alpine", "--env", "NOEQUALS"}, `orch: env: "NOEQUALS" is not KEY=VALUE (write --env KEY=VALUE)`},
		{[]string{"task", "create", "--image", "alpine", "--port", "x:y"}, `orch: port: "x:y" is not a port mapping (write --port 8080:80, --port 80 or --port 5353:53/udp)`},
		{[]string{"task", "create", "--image", "alpine", "--restart-policy", "often"}, `orch: restart_policy: unknown restart policy "often" (use never, on-failure or always)`},
		{[]string{"task", "create", "--image", "alpine", "--name", "bad name!"}, `orch: name: name "bad name!" has characters outside [a-zA-Z0-9_.-] or does not start with a letter or digit (use letters, digits, '_', '.', '-')`},
		{[]string{"task", "create", "--image", "alpine", "--stop-after-disconnect", "100ms"}, `orch: stop_after_disconnect: 100ms is outside 1s..1h (e.g. 3s; with the agent's --stop-grace it should end before the coordinators' --node-down-timeout (10s), so the container is gone before a replacement starts; 0 never stops it)`},
		{[]string{"task", "get"}, "orch: orch task get takes 1 argument(s), got 0: give the task's name, its id or a unique part of the id (as orch task list prints them)"},
		{[]string{"-o", "yaml", "task", "list"}, `orch: --output "yaml": use table or json`},
		{[]string{"task", "create", "--image", "alpine", "--count", "0"}, `orch: count: --count 0: submit how many? (give 1 or more)`},
		{[]string{"task", "create", "-f", "/nonexistent/tasks.yaml"}, `orch: reading tasks: open /nonexistent/tasks.yaml: no such file or directory`},
		{[]string{"task", "create", "-f", "-", "--image", "alpine"}, `orch: file: -f takes the tasks from the file, not from --image (write everything about the tasks in the file)`},
		{[]string{"task", "create", "--count", "2", "--image", "alpine", "--wait"}, `orch: wait: --wait follows one task (leave out --wait with --count or -f, and watch with orch task list)`},
	}
	for _, tc := range cli {
		out, code := c.orch(tc.args...)
		if code != 2 || strings.TrimSpace(out) != tc.want {
			t.Errorf("orch %v →\n  exit %d: %q\n  want exit 2: %q", tc.args, code, strings.TrimSpace(out), tc.want)
		}
	}
	if out, code := c.orch("task", "get", "no-such-task"); code != 1 || !strings.Contains(out, `task "no-such-task": not found: no task has this name or id`) {
		t.Errorf("orch task get no-such-task → exit %d %q, want exit 1 and not found", code, out)
	}
	if out, code := c.orch("task", "create", "--image", "alpine", "--bogus-flag"); code != 2 || !strings.HasPrefix(out, "orch: unknown flag: --bogus-flag") {
		t.Errorf("unknown flag → exit %d %q", code, out)
	}

	after := snapshot(t, c)
	if len(after) != len(before) {
		t.Fatalf("bad input changed the number of stored tasks: %d → %d", len(before), len(after))
	}
	for id, b := range before {
		a := after[id]
		if a.Name != b.Name || a.Image != b.Image || a.Env["QUOTE"] != b.Env["QUOTE"] || a.Labels["note"] != b.Labels["note"] ||
			strings.Join(a.Command, "\x00") != strings.Join(b.Command, "\x00") || a.State != b.State || a.Attempt != b.Attempt {
			t.Errorf("task %s changed: %+v → %+v", id, b, a)
		}
	}
	// Hostile but valid values are stored and shown verbatim.
	got := c.task(hostile.ID.String())
	if got.Labels["note"] != "ünïcødé 🚀 ' OR 1=1" || got.Command[2] != "; rm -rf /" {
		t.Errorf("hostile values not verbatim: labels %v command %q", got.Labels, got.Command)
	}
	if k := c.task(keep.ID.String()); k.Env["QUOTE"] != `it's "quoted"; DROP TABLE tasks;--` {
		t.Errorf("env not verbatim: %q", k.Env["QUOTE"])
	}
	_ = ctx
}

func snapshot(t *testing.T, c *cluster) map[string]queue.Task {
	t.Helper()
	tasks, err := c.store.ListTasks(context.Background(), postgres.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]queue.Task{}
	for _, tk := range tasks {
		out[tk.ID.String()] = tk
	}
	return out
}
