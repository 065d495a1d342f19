package coordinator

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

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
