package coordinator

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

type apiRig struct {
	t     *testing.T
	store *postgres.Store
	c     *Coordinator
	srv   *httptest.Server
}

func newAPIRig(t *testing.T) *apiRig {
	t.Helper()
	store, err := postgres.Open(context.Background(), pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	c, err := New(store, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return &apiRig{t: t, store: store, c: c, srv: srv}
}

func (r *apiRig) get(path string) (int, string, http.Header) {
	r.t.Helper()
	resp, err := http.Get(r.srv.URL + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// running creates a task, places it on node and marks it running.
func (r *apiRig) running(node queue.Node, name string) (queue.Task, queue.Lease) {
	r.t.Helper()
	ctx := context.Background()
	spec := queue.TaskSpec{Name: name, Image: "workload:test", Resources: queue.Resources{CPUMillis: 500, MemoryBytes: 256 << 20}}
	spec.Normalize()
	tk, err := r.store.CreateTask(ctx, uuid.Nil, spec)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.c.Pass(ctx); err != nil {
		r.t.Fatal(err)
	}
	claim, err := r.store.Claim(ctx, node.ID, 10)
	if err != nil || len(claim.Tasks) != 1 {
		r.t.Fatalf("claim: %+v %v", claim.Tasks, err)
	}
	l := claim.Tasks[0].Lease()
	if err := r.store.MarkRunning(ctx, l, "c-"+name); err != nil {
		r.t.Fatal(err)
	}
	return tk, l
}

func (r *apiRig) node(name string) queue.Node {
	r.t.Helper()
	n, err := r.store.RegisterNode(context.Background(), queue.NodeRegistration{Name: name,
		Capacity: queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 20 << 30}})
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

func TestMetrics_CoordinatorServesPrometheusText(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("m1")
	r.running(n, "one")
	if _, err := r.store.CreateTask(ctx, uuid.Nil, queue.TaskSpec{Image: "x", Resources: queue.Resources{CPUMillis: 64000}, RestartPolicy: queue.RestartNever}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	r.get("/tasks")
	r.get("/tasks/not-a-uuid")
	r.get("/nodes/nosuchnode")
	r.get("/no/such/route")

	code, body, hdr := r.get("/metrics")
	if code != 200 || expfmt.ResponseFormat(hdr).FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("GET /metrics: %d %q", code, hdr.Get("Content-Type"))
	}
	fams, samples := parseMetrics(t, body)
	want := []struct {
		sample string
		labels map[string]string
		value  float64
	}{
		{"orch_tasks", map[string]string{"state": "running"}, 1},
		{"orch_tasks", map[string]string{"state": "pending"}, 1},
		{"orch_tasks", map[string]string{"state": "failed"}, 0},
		{"orch_nodes", map[string]string{"state": "ready"}, 1},
		{"orch_nodes", map[string]string{"state": "down"}, 0},
		{"orch_schedule_pass_duration_seconds_count", nil, 2},
		{"orch_schedule_placed_total", nil, 1},
		{"orch_api_requests_total", map[string]string{"route": "/tasks", "method": "GET", "code": "200"}, 1},
		{"orch_api_requests_total", map[string]string{"route": "/tasks/{id}", "method": "GET", "code": "400"}, 1},
		{"orch_api_requests_total", map[string]string{"route": "/nodes/{node}", "code": "404"}, 1},
		{"orch_api_requests_total", map[string]string{"route": "unmatched", "code": "404"}, 1},
	}
	for _, w := range want {
		if v, ok := sampleValue(samples, w.sample, w.labels); !ok || v != w.value {
			t.Errorf("%s%v = %v (found %v), want %v\n%s", w.sample, w.labels, v, ok, w.value, body)
		}
	}
	if fams["orch_schedule_pass_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM || fams["orch_api_requests_total"].GetType() != dto.MetricType_COUNTER || fams["orch_tasks"].GetType() != dto.MetricType_GAUGE {
		t.Errorf("types: %s %s %s", fams["orch_schedule_pass_duration_seconds"].GetType(), fams["orch_api_requests_total"].GetType(), fams["orch_tasks"].GetType())
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if v, ok := sampleValue(samples, name, nil); !ok || v <= 0 {
			t.Errorf("%s = %v, %v; want the runtime and process collectors' figure", name, v, ok)
		}
	}
}

func lineTexts(lines []queue.LogLine) string {
	var s []string
	for _, l := range lines {
		s = append(s, l.Text)
	}
	return strings.Join(s, ",")
}

func TestLogsAPI_ReadsTailsAndFollowsUntilTheTaskEnds(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("l1")
	tk, lease := r.running(n, "logger")
	t0 := time.Now()
	batch := func(from, to int) []queue.LogLine {
		var out []queue.LogLine
		for i := from; i <= to; i++ {
			s := queue.Stdout
			if i%2 == 0 {
				s = queue.Stderr
			}
			out = append(out, queue.LogLine{At: t0.Add(time.Duration(i) * time.Millisecond), Stream: s, Text: fmt.Sprintf("l%d", i)})
		}
		return out
	}
	if _, err := r.store.AppendLogs(ctx, lease, batch(1, 4), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	id := tk.ID.String()

	code, body, _ := r.get("/tasks/" + id + "/logs")
	var page queue.LogPage
	if err := json.Unmarshal([]byte(body), &page); err != nil || code != 200 {
		t.Fatalf("GET logs: %d %s", code, body)
	}
	if lineTexts(page.Lines) != "l1,l2,l3,l4" || page.Lines[1].Stream != queue.Stderr || page.State != queue.Running {
		t.Errorf("page = %+v", page)
	}
	if code, body, hdr := r.get("/tasks/" + id + "/logs?format=text&tail=2"); code != 200 || body != "l3\nl4\n" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("text tail: %d %q %q", code, body, hdr.Get("Content-Type"))
	}
	for _, bad := range []string{"?tail=-1", "?tail=x", "?follow=maybe", "?format=xml", "?after=1.5"} {
		code, body, _ := r.get("/tasks/" + id + "/logs" + bad)
		var eb ErrorBody
		_ = json.Unmarshal([]byte(body), &eb)
		if code != 400 || eb.Field == "" || eb.Hint == "" {
			t.Errorf("%s: %d %s, want 400 naming the field", bad, code, body)
		}
	}
	if code, _, _ := r.get("/tasks/" + uuid.NewString() + "/logs"); code != 404 {
		t.Errorf("logs of an unknown task: %d, want 404", code)
	}

	// Follow from after the second line: l3, l4, then what arrives, then done.
	resp, err := http.Get(r.srv.URL + "/tasks/" + id + "/logs?follow=true&after=" + fmt.Sprint(page.Lines[1].ID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("follow content type %q", ct)
	}
	frames := make(chan LogFrame, 100)
	go func() {
		defer close(frames)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var f LogFrame
			if json.Unmarshal(sc.Bytes(), &f) == nil {
				frames <- f
			}
		}
	}()
	var got []queue.LogLine
	next := func() LogFrame {
		t.Helper()
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("stream ended early; lines so far %s", lineTexts(got))
			}
			got = append(got, f.Lines...)
			return f
		case <-time.After(20 * time.Second):
			t.Fatalf("no frame in 20 s; lines so far %s", lineTexts(got))
		}
		return LogFrame{}
	}
	if f := next(); f.Done || lineTexts(f.Lines) != "l3,l4" {
		t.Fatalf("first frame %+v", f)
	}
	if _, err := r.store.AppendLogs(ctx, lease, batch(5, 6), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	for len(got) < 4 {
		if f := next(); f.Done {
			t.Fatalf("done before the task ended: %+v", f)
		}
	}
	// The agent ships its last lines, then records the exit.
	if _, err := r.store.AppendLogs(ctx, lease, batch(7, 7), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.MarkExited(ctx, lease, 0, "", false); err != nil {
		t.Fatal(err)
	}
	for {
		f := next()
		if f.Done {
			if f.State != queue.Completed {
				t.Errorf("last frame state %s", f.State)
			}
			break
		}
	}
	if lineTexts(got) != "l3,l4,l5,l6,l7" {
		t.Errorf("followed %s", lineTexts(got))
	}
	if _, ok := <-frames; ok {
		t.Errorf("frames after done")
	}
}

func TestStatsAPI_NodeAndTaskHistory(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("s1")
	tk, lease := r.running(n, "measured")
	for i := 1; i <= 3; i++ {
		if err := r.store.ReportUsage(ctx, n.ID, queue.Usage{CPUPercent: float64(i), MemoryUsedBytes: 1 << 30, MemoryTotalBytes: 4 << 30}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.store.ReportTaskUsage(ctx, n.ID, []queue.TaskUsage{{TaskID: tk.ID, Attempt: lease.Attempt, CPUPercent: 25, MemoryUsedBytes: 10 << 20}}); err != nil {
		t.Fatal(err)
	}
	code, body, _ := r.get("/nodes/s1/stats?limit=2")
	var d NodeDetail
	if err := json.Unmarshal([]byte(body), &d); err != nil || code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if d.Name != "s1" || len(d.Stats) != 2 || d.Stats[0].CPUPercent != 3 || d.Usage.CPUPercent != 3 || d.Reserved.CPUMillis != 500 {
		t.Errorf("node detail = %+v", d)
	}
	code, body, _ = r.get("/tasks/" + tk.ID.String())
	var td TaskDetail
	if err := json.Unmarshal([]byte(body), &td); err != nil || code != 200 || td.Usage == nil || td.Usage.CPUPercent != 25 {
		t.Errorf("task detail usage: %d %s", code, body)
	}
	code, body, _ = r.get("/tasks/" + tk.ID.String() + "/stats")
	var ts []queue.TaskUsage
	if err := json.Unmarshal([]byte(body), &ts); err != nil || code != 200 || len(ts) != 1 || ts[0].MemoryUsedBytes != 10<<20 {
		t.Errorf("task stats: %d %s", code, body)
	}
}

// chromium finds Debian's chromium. Without it the browser checks are
// skipped outside CI and fail in CI, where .ci/run installs it.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (CI is set; .ci/run installs it with apt-get install chromium)")
	}
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
		"--no-first-run", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

func TestStatusPage_InHeadlessChromium(t *testing.T) {
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

	bin := chromium(t)
	if bin == "" {
		t.Skip("chromium is not installed (apt-get install chromium); checked the HTML only, not the rendered page")
	}
	dom := runChromium(t, bin, "--dump-dom", r.srv.URL+"/")
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
	shot := filepath.Join(t.ArtifactDir(), "status.png")
	runChromium(t, bin, "--window-size=1280,900", "--screenshot="+shot, r.srv.URL+"/")
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 5000 {
		t.Fatalf("screenshot %s: %v (size %v)", shot, err, st)
	}
	t.Logf("status page screenshot: %s (%d bytes; keep it with go test -artifacts)", shot, st.Size())
}

func TestClient_FollowLogs_ResumesAfterABrokenStreamWithoutRepeats(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("f1")
	tk, lease := r.running(n, "resumed")
	line := func(i int) []queue.LogLine {
		return []queue.LogLine{{At: time.Now(), Stream: queue.Stdout, Text: fmt.Sprintf("l%d", i)}}
	}
	if _, err := r.store.AppendLogs(ctx, lease, line(1), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(r.srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	errc := make(chan error, 1)
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	go func() {
		errc <- client.FollowLogs(fctx, tk.ID.String(), LogOptions{}, func(f LogFrame) error {
			for _, l := range f.Lines {
				got <- l.Text
			}
			return nil
		})
	}()
	wait := func(want string) {
		t.Helper()
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %q within 20 s", want)
		}
	}
	wait("l1")
	r.srv.CloseClientConnections() // the coordinator goes away mid-follow
	if _, err := r.store.AppendLogs(ctx, lease, line(2), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	wait("l2")
	if _, err := r.store.AppendLogs(ctx, lease, line(3), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.MarkExited(ctx, lease, 0, "", false); err != nil {
		t.Fatal(err)
	}
	wait("l3")
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("FollowLogs: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("FollowLogs did not return after the task ended")
	}
	if len(got) != 0 {
		t.Errorf("extra lines: %d", len(got))
	}
	// The server counts a request when its handler returns, which for the
	// first, broken follow is when it next writes: wait for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n := testutil.ToFloat64(r.c.metrics.requests.WithLabelValues("/tasks/{id}/logs", "GET", "200"))
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follow was answered %v times; want a reconnect", n)
		}
	}
}
