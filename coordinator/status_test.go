package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/coordinator/browsertest"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/storetest"
)

func TestStatusPage_ListsNodesAndTasks_EscapesNames(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n1 := r.node("alpha")
	r.node("beta")
	run, _ := r.running(n1, "web")
	if err := r.store.ReportUsage(ctx, n1.ID, queue.Usage{CPUPercent: 40, Load1: 0.8, MemoryUsedBytes: 2 << 30, MemoryTotalBytes: 8 << 30,
		DiskUsedBytes: 5 << 30, DiskTotalBytes: 20 << 30}); err != nil {
		t.Fatal(err)
	}
	waiting, err := r.store.CreateTask(ctx, uuid.Nil, queue.TaskSpec{Name: "<b>huge</b>", Image: "x", Resources: queue.Resources{CPUMillis: 64000}, RestartPolicy: queue.RestartNever})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.Pass(ctx); err != nil {
		t.Fatal(err)
	}

	code, html, hdr := r.get("/")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", code, hdr.Get("Content-Type"))
	}
	// What the server sends: self-refreshing, no external assets, no scripts,
	// names escaped.
	for _, want := range []string{`<meta http-equiv="refresh" content="5">`, `&lt;b&gt;huge&lt;/b&gt;`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "src=", "<link", "http://", "https://", "<b>huge"} {
		if strings.Contains(html, banned) {
			t.Errorf("page contains %q", banned)
		}
	}

	bin := browsertest.Chromium(t)
	dom := browsertest.DOM(t, bin, r.srv.URL+"/")
	rows := regexp.MustCompile(`<tr class="node" data-name="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(rows) != 2 || rows[0][1] != "alpha" || rows[1][1] != "beta" {
		t.Errorf("node rows %v", rows)
	}
	// alpha: 500m of 2 cores reserved (25%), 40% CPU used, 2 of 8 GiB memory used (25%).
	for _, want := range []string{
		`<span style="width: 25%"></span>`, `<span style="width: 40%"></span>`,
		`0.5 of 2 cores`, `40% of the machine, load 0.80`, `2GiB of 8GiB`,
		fmt.Sprintf(`<tr class="task" data-id="%s" data-state="running">`, run.ID),
		fmt.Sprintf(`<tr class="task" data-id="%s" data-state="pending">`, waiting.ID),
		fmt.Sprintf(`<a class="logs" href="/tasks/%s/logs?format=text">logs</a>`, run.ID),
		`&lt;b&gt;huge&lt;/b&gt;`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "<b>huge</b>") {
		t.Errorf("a task name became markup")
	}
	browsertest.Screenshot(t, bin, r.srv.URL+"/", "status.png", 900)
}

// TestStatusPage_FailureReasonsAndFilters: a failed task shows why in the
// list (exit code and error, or the start error of a task that never ran,
// whose logs link goes to its page instead of an empty log), and state= and
// node= narrow the list.
func TestStatusPage_FailureReasonsAndFilters(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	alpha := r.node("alpha")
	_, crashLease := r.running(alpha, "crash")
	if _, err := r.store.RecordExit(ctx, crashLease, postgres.ExitReport{Code: 3, Error: "killed: out of memory"}); err != nil {
		t.Fatal(err)
	}
	// The rest goes to beta.
	beta := r.node("beta")
	if _, err := r.store.SetCordoned(ctx, "alpha", true); err != nil {
		t.Fatal(err)
	}
	web, _ := r.running(beta, "web")
	noImage := r.startFailed(beta, "noimage", "no such image: 127.0.0.1:1/nosuch:1")

	code, html, _ := r.get("/")
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	for _, want := range []string{
		`<span class="why">exit 3: killed: out of memory</span>`,
		`<span class="why">no such image: 127.0.0.1:1/nosuch:1</span>`,
		fmt.Sprintf(`<a class="why" href="/ui/tasks/%s">never started</a>`, noImage.ID),
		fmt.Sprintf(`<a class="logs" href="/tasks/%s/logs?format=text">logs</a>`, web.ID),
		fmt.Sprintf(`<a class="task" href="/ui/tasks/%s">web</a>`, web.ID),
		`<a href="/?node=alpha">alpha</a>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, `id="jobs"`) {
		t.Errorf("a cluster without jobs shows a jobs table")
	}
	listed := func(path string) []string {
		t.Helper()
		code, html, _ := r.get(path)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, html)
		}
		var names []string
		for _, m := range regexp.MustCompile(`<a class="task" href="[^"]+">([^<]+)</a>`).FindAllStringSubmatch(html, -1) {
			names = append(names, m[1])
		}
		sort.Strings(names)
		return names
	}
	for path, want := range map[string]string{
		"/":                          "crash noimage web",
		"/?state=failed":             "crash noimage",
		"/?node=beta":                "noimage web",
		"/?state=failed&node=beta":   "noimage",
		"/?state=running&node=alpha": "",
	} {
		if got := strings.Join(listed(path), " "); got != want {
			t.Errorf("GET %s lists %q, want %q", path, got, want)
		}
	}
	if _, html, _ := r.get("/?state=failed&node=beta"); !strings.Contains(html, `<option selected>failed</option>`) ||
		!strings.Contains(html, `<option selected>beta</option>`) {
		t.Errorf("the filter form does not show the filter")
	}
	if code, body, _ := r.get("/?state=broken"); code != 400 || !strings.Contains(body, `"field": "state"`) {
		t.Errorf("GET /?state=broken: %d %s", code, body)
	}
	if code, _, _ := r.get("/?node=nosuch"); code != 404 {
		t.Errorf("GET /?node=nosuch: %d, want 404", code)
	}
}

// TestTaskPage_ShowsSpecEventsLogsAndWhyATaskNeverStarted: the page of a
// task whose image does not exist says why it failed, and instead of an
// empty log that it never started; a running task's page has its spec,
// ports, health, usage, events and last log lines.
func TestTaskPage_ShowsSpecEventsLogsAndWhyATaskNeverStarted(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("alpha")
	const pullErr = "no such image: 127.0.0.1:1/nosuch:1"
	noImage := r.startFailed(n, "noimage", pullErr)
	code, html, hdr := r.get("/ui/tasks/" + noImage.ID.String())
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("task page: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`<div class="alert" id="why">Failed: ` + pullErr + `</div>`,
		`<p class="muted" id="nologs">No output: the task never started. Failed: ` + pullErr + `</p>`,
		`<th>image</th><td>127.0.0.1:1/nosuch:1</td>`,
		`starting → <span class="state state-failed">failed</span>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page of a task that never started lacks %q\n%s", want, html)
		}
	}
	if strings.Contains(html, `http-equiv="refresh"`) {
		t.Errorf("the page of a finished task reloads itself")
	}

	web, lease := runningOn(t, r.c, n.ID, queue.TaskSpec{Name: "web", Image: "workload:test", Command: []string{"-serve", ":8080"},
		Env: map[string]string{"GREETING": "hello"}, Ports: []queue.Port{{ContainerPort: 8080, HostPort: 18080}},
		RestartPolicy: queue.RestartOnFailure, Resources: queue.Resources{CPUMillis: 500, MemoryBytes: 256 << 20},
		HealthCheck: &queue.HealthCheck{Type: queue.HealthHTTP, Port: 8080, Path: "/healthz"}})
	if _, err := r.store.AppendLogs(ctx, lease, []queue.LogLine{{Attempt: lease.Attempt, At: time.Now(), Stream: queue.Stdout, Text: "listening on :8080"},
		{Attempt: lease.Attempt, At: time.Now(), Stream: queue.Stdout, Text: "<script>alert(1)</script>"}}, queue.LogLimits{MaxLines: 100, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.ReportTaskUsage(ctx, n.ID, []queue.TaskUsage{{TaskID: web.ID, Attempt: lease.Attempt, CPUPercent: 12.5,
		MemoryUsedBytes: 64 << 20, MemoryLimitBytes: 256 << 20}}); err != nil {
		t.Fatal(err)
	}
	_, html, _ = r.get("/ui/tasks/" + web.ID.String())
	for _, want := range []string{
		`<th>command</th><td>-serve :8080</td>`,
		`<th>ports</th><td>8080/tcp on host port 18080</td>`,
		`<th>env GREETING</th><td>hello</td>`,
		`<th>restart</th><td>on-failure, unlimited</td>`,
		`<th>node</th><td>alpha</td>`,
		`<th>check</th><td>http on container port 8080, path /healthz`,
		`<th>CPU</th><td>12.5% of one core (reserved 0.5 cores)</td>`,
		`<th>memory</th><td>64MiB of a limit of 256MiB</td>`,
		"<pre class=\"logs\" id=\"logs\">listening on :8080\n&lt;script&gt;alert(1)&lt;/script&gt;\n</pre>",
		`starting → <span class="state state-running">running</span>`,
		`<meta http-equiv="refresh" content="5">`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page of a running task lacks %q", want)
		}
	}
	if strings.Contains(html, `id="why"`) {
		t.Errorf("a running task has a failure headline")
	}
	// Not an id: a name, and no task has it.
	if code, body, _ := r.get("/ui/tasks/not-a-uuid"); code != 404 || !strings.Contains(body, "no task has this name or id") {
		t.Errorf("GET /ui/tasks/not-a-uuid: %d %s", code, body)
	}
	if code, _, _ := r.get("/ui/tasks/" + uuid.Must(uuid.NewV7()).String()); code != 404 {
		t.Errorf("GET /ui/tasks/<unknown>: %d, want 404", code)
	}
}

// TestStatusPage_ListsJobsWithCountsAndDeployment: once a job exists the
// page has a jobs table: type, version, status, task counts and the
// deployment's progress.
func TestStatusPage_ListsJobsWithCountsAndDeployment(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("alpha")
	resp, err := http.Post(r.srv.URL+"/jobs", "application/json", strings.NewReader(
		`{"name":"web","type":"service","count":2,"task":{"image":"workload:test","resources":{"cpu":"250m","memory":"64MiB"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var run JobRunResult
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST /jobs: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	r.c.ReconcileJob(ctx, run.Job.ID)
	if _, err := r.c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	tasks, err := r.store.JobTasks(ctx, run.Job.ID, 10)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("job tasks: %d, %v", len(tasks), err)
	}
	storetest.Start(t, r.store, n.ID, tasks[0].ID) // claims both; one runs

	_, html, _ := r.get("/")
	for _, want := range []string{
		`<table id="jobs">`,
		`<tr class="job" data-name="web" data-status="running">`,
		`<td>1 starting, 1 running</td>`,
		`job web</span>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !regexp.MustCompile(`<span class="text deployment" data-state="running"><span class="state state-running">running</span> \d of 2 healthy, \d placed</span>`).MatchString(html) {
		t.Errorf("page lacks the deployment's progress")
	}
	if t.Failed() {
		t.Logf("jobs table:\n%s", html[strings.Index(html, `<table id="jobs">`):strings.Index(html, `<h2>Tasks`)])
	}
}
