package main

import (
	"context"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/coordinator/browsertest"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

func TestE2E_TwoCoordinatorsTwoAgents_EveryTaskRunsExactlyOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 2, agents: 2, coordArgs: []string{"--strategy", "spread"}})
	ctx := context.Background()
	const n = 50
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		// Alternate replicas: either may take any request.
		client, err := coordinator.NewClient(c.addrs[i%2], "")
		if err != nil {
			t.Fatal(err)
		}
		cpu := coordinator.Quantity("100m")
		tk, err := client.CreateTask(ctx, coordinator.TaskRequest{Name: fmt.Sprintf("batch-%02d", i), Image: c.image,
			CPU: &cpu, Command: []string{"-sleep", "300ms"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID.String())
	}
	c.eventually(3*time.Minute, "all 50 tasks to finish", func() bool {
		done, err := c.store.ListTasks(ctx, postgres.TaskFilter{States: []queue.State{queue.Completed, queue.Failed, queue.Stopped}})
		return err == nil && len(done) == n
	})
	perNode := map[string]int{}
	for _, id := range ids {
		d := c.task(id)
		if d.State != queue.Completed || d.Attempt != 1 {
			t.Errorf("task %s: %s attempt %d (%s)", d.Name, d.State, d.Attempt, d.Error)
		}
		starts, runs := 0, 0
		nodes := map[string]bool{}
		for _, e := range d.Events {
			if e.NodeID != nil {
				nodes[e.NodeID.String()] = true
			}
			switch e.To {
			case queue.Starting:
				starts++
			case queue.Running:
				runs++
			}
		}
		if starts != 1 || runs != 1 || len(nodes) != 1 {
			t.Errorf("task %s: claimed %d times, ran %d times, on %d nodes; want 1, 1, 1", d.Name, starts, runs, len(nodes))
		}
		perNode[d.NodeName]++
	}
	if len(perNode) != 2 {
		t.Errorf("tasks per node = %v, want both agents used under spread", perNode)
	}
	t.Logf("tasks per node: %v", perNode)
}

// TestCoordinator_StatusPage_InChromiumWithTokenInURL is the status page
// as a user opens it: a coordinator with tokens, an agent on the local
// Docker, and headless Chromium given http://orch:TOKEN@127.0.0.1:PORT/
// (Basic credentials in the URL, which a browser only sends when challenged
// with Basic alone). The rendered page has the nodes table and the tasks;
// the page of a task whose image does not exist shows the engine's reason.
// Screenshots of both are saved (go test -artifacts -outputdir DIR).
func TestCoordinator_StatusPage_InChromiumWithTokenInURL(t *testing.T) {
	t.Parallel()
	bin := browsertest.Chromium(t)
	const adminToken, readToken = "status-admin-0123456789abcdef", "status-read-0123456789abcdef"
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 1, coordArgs: []string{"--admin-token", adminToken, "--read-token", readToken}})
	ctx := context.Background()
	client, err := coordinator.NewClient(c.addrs[0], adminToken)
	if err != nil {
		t.Fatal(err)
	}
	web, err := client.CreateTask(ctx, coordinator.TaskRequest{Name: "web", Image: c.image, Command: []string{"-logs", "3", "-sleep", "forever"}})
	if err != nil {
		t.Fatal(err)
	}
	// A registry that refuses connections: the pull fails at once, offline too.
	missing, err := client.CreateTask(ctx, coordinator.TaskRequest{Name: "missing", Image: "127.0.0.1:1/orch-test/nosuch:1",
		RestartPolicy: queue.RestartNever})
	if err != nil {
		t.Fatal(err)
	}
	// From the database: the CLI of the cluster's fixtures has no token.
	stateOf := func(id uuid.UUID) queue.Task {
		t.Helper()
		tk, err := c.store.GetTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	c.eventually(time.Minute, "web running", func() bool { return stateOf(web.ID).State == queue.Running })
	c.eventually(time.Minute, "missing ended", func() bool { return stateOf(missing.ID).State.Terminal() })
	failed := stateOf(missing.ID)
	if failed.State != queue.Failed || failed.Error == "" {
		t.Fatalf("task with a missing image: %s, error %q", failed.State, failed.Error)
	}
	c.eventually(30*time.Second, "web's log lines", func() bool {
		p, err := c.store.ReadLogs(ctx, web.ID, postgres.LogQuery{Limit: 10})
		return err == nil && len(p.Lines) == 3
	})

	base := strings.Replace(c.addrs[0], "http://", "http://orch:"+readToken+"@", 1)
	dom := browsertest.DOM(t, bin, base+"/")
	for _, want := range []string{
		`<table id="nodes">`,
		fmt.Sprintf(`<tr class="node" data-name="%s">`, c.nodes[0]),
		fmt.Sprintf(`<tr class="task" data-id="%s" data-state="running">`, web.ID),
		fmt.Sprintf(`<tr class="task" data-id="%s" data-state="failed">`, missing.ID),
		fmt.Sprintf(`<a class="why" href="/ui/tasks/%s">never started</a>`, missing.ID),
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered status page lacks %q", want)
		}
	}
	if strings.Contains(dom, "missing or unknown API token") {
		t.Fatalf("Chromium got the 401, not the page:\n%s", dom)
	}
	taskDOM := browsertest.DOM(t, bin, base+"/ui/tasks/"+missing.ID.String())
	why := regexp.MustCompile(`<div class="alert" id="why">([^<]*)</div>`).FindStringSubmatch(taskDOM)
	if why == nil || !strings.Contains(why[1], "Failed: ") || !strings.Contains(html.UnescapeString(why[1]), failed.Error) {
		t.Errorf("task page of the missing image: headline %q, want the engine's error %q", why, failed.Error)
	}
	if !strings.Contains(taskDOM, `id="nologs">No output: the task never started.`) {
		t.Errorf("task page of the missing image does not say it never started")
	}
	webDOM := browsertest.DOM(t, bin, base+"/ui/tasks/"+web.ID.String())
	if !strings.Contains(webDOM, "line 1\nline 2\nline 3\n</pre>") {
		t.Errorf("task page of web lacks its log lines")
	}
	browsertest.Screenshot(t, bin, base+"/", "status.png", 700)
	browsertest.Screenshot(t, bin, base+"/ui/tasks/"+missing.ID.String(), "task-missing-image.png", 900)
	browsertest.Screenshot(t, bin, base+"/ui/tasks/"+web.ID.String(), "task-web.png", 1100)
}
