package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/proc"
	"github.com/orchd/orch/queue/postgres/storetest"
)

func notPending(s queue.State) bool { return s != queue.Pending }

// waitReason waits until a pending task shows a reason containing want.
func (c *cluster) waitReason(id, want string) {
	c.t.Helper()
	c.eventually(20*time.Second, fmt.Sprintf("task %s to wait because %q", id, want), func() bool {
		d := c.task(id)
		return d.State == queue.Pending && strings.Contains(d.Reason, want)
	})
}

// TestE2E_Scheduling_CordonConstraintsPortsStrategy drives placement through
// the CLI against real agents and Docker: a cordoned node gets nothing new
// and uncordoning it lets waiting work run; constraints pick nodes by label;
// a host port in use keeps a second task off that node until the first ends;
// the waiting reason shows in `orch task get`. (Both agents share this
// machine's Docker engine, so the port case stays on one node.)
func TestE2E_Scheduling_CordonConstraintsPortsStrategy(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 0})
	suffix := proc.RandomHex(4)
	eu, us := "e2e-"+suffix+"-eu", "e2e-"+suffix+"-us"
	c.startAgent(eu, "--label", "zone=eu")
	c.startAgent(us, "--label", "zone=us")
	c.waitNodes(2)

	t.Run("cordoned node gets nothing new until uncordoned", func(t *testing.T) {
		out, code := c.orch("node", "cordon", eu)
		if code != 0 || !strings.Contains(out, "cordoned") {
			t.Fatalf("orch node cordon (exit %d): %s", code, out)
		}
		tk := createTask(t, c, "--name", "wants-eu", "--constraint", "zone=eu", "--", "-sleep", "forever")
		c.waitReason(tk.ID.String(), "no node fits: 1 cordoned, 1 not matching zone=eu")
		out, _ = c.orch("task", "get", tk.ID.String())
		if !strings.Contains(out, "waiting because") || !strings.Contains(out, "1 cordoned") || !strings.Contains(out, "zone=eu") {
			t.Errorf("orch task get does not say why the task waits:\n%s", out)
		}
		// Work without the constraint goes to the other node meanwhile.
		other := createTask(t, c, "--name", "anywhere", "--", "-sleep", "forever")
		if d := c.waitState(other.ID.String(), 60*time.Second, notPending); d.NodeName != us {
			t.Errorf("with %s cordoned, a task went to %q", eu, d.NodeName)
		}
		if out, code := c.orch("node", "uncordon", eu); code != 0 || strings.Contains(out, "cordoned") {
			t.Fatalf("orch node uncordon (exit %d): %s", code, out)
		}
		d := c.waitState(tk.ID.String(), 60*time.Second, func(s queue.State) bool { return s == queue.Running })
		if d.NodeName != eu || d.Reason != "" {
			t.Errorf("after uncordon the task is on %q with reason %q, want %s and none", d.NodeName, d.Reason, eu)
		}
		for _, id := range []string{tk.ID.String(), other.ID.String()} {
			if out, code := c.orch("task", "delete", id, "--wait"); code != 0 {
				t.Errorf("delete %s (exit %d): %s", id, code, out)
			}
		}
	})

	t.Run("a host port in use keeps a second task off the node", func(t *testing.T) {
		port := strconv.Itoa(storetest.FreePort(t))
		first := createTask(t, c, "--name", "web-1", "--constraint", "zone=us", "--port", port+":8080", "--", "-serve", ":8080")
		c.waitState(first.ID.String(), 60*time.Second, func(s queue.State) bool { return s == queue.Running })
		second := createTask(t, c, "--name", "web-2", "--constraint", "zone=us", "--port", port+":8080", "--", "-serve", ":8080")
		c.waitReason(second.ID.String(), "1 with host port "+port+"/tcp taken")
		if out, code := c.orch("task", "delete", first.ID.String(), "--wait"); code != 0 {
			t.Fatalf("delete (exit %d): %s", code, out)
		}
		d := c.waitState(second.ID.String(), 60*time.Second, func(s queue.State) bool { return s == queue.Running || s.Terminal() })
		if d.State != queue.Running || d.NodeName != us {
			t.Errorf("after the port was freed the second task is %s on %q (%s)", d.State, d.NodeName, d.Error)
		}
		c.orch("task", "delete", second.ID.String(), "--wait")
	})

	t.Run("strategy and constraints show in task get", func(t *testing.T) {
		tk := createTask(t, c, "--name", "rr", "--strategy", "round-robin", "--constraint", "zone!=mars", "--", "-exit", "0")
		c.waitState(tk.ID.String(), 60*time.Second, terminal)
		out, _ := c.orch("task", "get", tk.ID.String())
		for _, want := range []string{"round-robin", "zone!=mars"} {
			if !strings.Contains(out, want) {
				t.Errorf("orch task get does not show %q:\n%s", want, out)
			}
		}
	})

	t.Run("bad strategy or constraint: exit 2 and 400 naming the field", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"task", "create", "--image", "alpine", "--strategy", "fastest"}, "strategy"},
			{[]string{"task", "create", "--image", "alpine", "--constraint", "zone"}, "constraints"},
			{[]string{"task", "create", "--image", "alpine", "--constraint", "=eu"}, "constraints"},
		} {
			out, code := c.orch(tc.args...)
			if code != 2 || !strings.Contains(out, tc.want) {
				t.Errorf("orch %v → exit %d %q, want exit 2 mentioning %q", tc.args, code, out, tc.want)
			}
		}
		for body, field := range map[string]string{
			`{"image": "alpine", "strategy": "fastest"}`:                                      "strategy",
			`{"image": "alpine", "constraints": ["zone"]}`:                                    "constraints",
			`{"image": "alpine", "constraints": [{"key": "zone", "op": "~", "value": "eu"}]}`: "constraints",
			`{"image": "alpine", "constraints": [{"key": "zone", "value": "eu", "x": 1}]}`:    "constraints",
		} {
			resp, err := http.Post(c.addrs[0]+"/tasks", "application/json", bytes.NewBufferString(body))
			if err != nil {
				t.Fatal(err)
			}
			var eb struct{ Error, Field, Hint string }
			_ = json.NewDecoder(resp.Body).Decode(&eb)
			resp.Body.Close()
			if resp.StatusCode != 400 || eb.Field != field || eb.Hint == "" {
				t.Errorf("%s → %d %+v, want 400 naming %q with a hint", body, resp.StatusCode, eb, field)
			}
		}
		// The string and object forms both work through the API.
		resp, err := http.Post(c.addrs[0]+"/tasks", "application/json", bytes.NewBufferString(
			`{"image": "`+c.image+`", "strategy": "epvm", "command": ["-exit", "0"],
			  "constraints": ["zone=eu", {"key": "gpu", "op": "!=", "value": "none"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		var created queue.Task
		_ = json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if resp.StatusCode != 201 || created.Strategy != "epvm" || len(created.Constraints) != 2 || created.Constraints[1].String() != "gpu!=none" {
			t.Fatalf("POST with both constraint forms → %d %+v", resp.StatusCode, created)
		}
		if d := c.waitState(created.ID.String(), 60*time.Second, terminal); d.NodeName != eu {
			t.Errorf("epvm task with zone=eu ran on %q", d.NodeName)
		}
	})
}
