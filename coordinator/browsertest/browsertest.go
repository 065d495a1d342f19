// Package browsertest drives Debian's headless Chromium for the tests of
// orch's status page: the DOM a real browser builds from a page, and
// screenshots to look at. It is for tests only.
//
// Without Chromium the browser checks are skipped outside CI and fail in CI
// (CI set), where .ci/run installs it (apt-get install chromium).
package browsertest

import (
	"cmp"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Chromium finds Chromium, skipping the test without it (failing it in CI).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (CI is set; .ci/run installs it with apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// Run runs headless Chromium with args on a profile of its own and returns
// what it printed on stdout.
func Run(t testing.TB, bin string, args ...string) string {
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

// DOM is the document Chromium builds from url, after it has run the
// page: what a user sees, as HTML.
func DOM(t testing.TB, bin, url string) string {
	t.Helper()
	return Run(t, bin, "--dump-dom", url)
}

// Screenshot saves a picture of url, 1280 pixels wide and height high
// (0: 900), as name (a .png) in the test's artifact directory (go test
// -artifacts -outputdir DIR keeps it), logs where, and returns the path.
func Screenshot(t *testing.T, bin, url, name string, height int) string {
	t.Helper()
	shot := filepath.Join(t.ArtifactDir(), name)
	Run(t, bin, "--window-size=1280,"+strconv.Itoa(cmp.Or(height, 900)), "--screenshot="+shot, url)
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 5000 {
		t.Fatalf("screenshot %s: %v (size %v)", shot, err, st)
	}
	t.Logf("screenshot of %s: %s (%d bytes; keep it with go test -artifacts -outputdir DIR)", redactURL(url), shot, st.Size())
	return shot
}

// redactURL keeps the password of a user:password@host URL out of logs.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok || strings.Contains(userinfo, "/") {
		return u
	}
	user, _, _ := strings.Cut(userinfo, ":")
	return scheme + "://" + user + ":****@" + host
}
