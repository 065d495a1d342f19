package main

import (
	"regexp"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
)

// The CLI sets stop_after_disconnect; the API stores it and `orch task get`
// shows it. What the agent does with it is tested in agent/disconnect_test.go.
func TestE2E_StopAfterDisconnect_SetByTheCLI_ShownByGet(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 0})
	tk := createTask(t, c, "--name", "singleton", "--stop-after-disconnect", "3s")
	if tk.StopAfterDisconnect != queue.Duration(3*time.Second) {
		t.Errorf("created with stop_after_disconnect %s, want 3s", tk.StopAfterDisconnect)
	}
	if got := c.task(tk.ID.String()); got.StopAfterDisconnect != queue.Duration(3*time.Second) {
		t.Errorf("stored stop_after_disconnect %s, want 3s", got.StopAfterDisconnect)
	}
	out, code := c.orch("task", "get", tk.ID.String())
	if code != 0 || !regexp.MustCompile(`(?m)^stop after disconnect\s+3s$`).MatchString(out) {
		t.Errorf("orch task get → exit %d:\n%s\nwant a line 'stop after disconnect 3s'", code, out)
	}
	plain := createTask(t, c, "--name", "plain")
	if out, _ := c.orch("task", "get", plain.ID.String()); regexp.MustCompile(`stop after disconnect`).MatchString(out) {
		t.Errorf("a task without it shows a stop after disconnect line:\n%s", out)
	}
}
