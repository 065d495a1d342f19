package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/orchd/orch/queue/postgres/pgserver"
)

var tpsRe = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench measures the machine's commit rate with pgbench's built-in
// TPC-B-like script, in the bench's database (its tables are dropped after).
func (b *bench) pgbench(ctx context.Context) error {
	bin, err := pgbenchBinary()
	if err != nil {
		return skipError{err.Error()}
	}
	o := b.opts
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append(args, b.url)...)
		// PG* variables of the user's would override the URL.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PG") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("pgbench %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return string(out), nil
	}
	if _, err := run("-i", "-q", "-s", strconv.Itoa(o.PGBenchScale)); err != nil {
		return err
	}
	defer func() {
		if _, err := run("-i", "-I", "d"); err != nil {
			b.logf("dropping pgbench's tables: %v", err)
		}
	}()
	secs := max(1, int(o.PGBenchTime.Seconds()))
	out, err := run("-c", strconv.Itoa(o.PGBenchClients), "-j", strconv.Itoa(min(o.PGBenchClients, 2)), "-T", strconv.Itoa(secs))
	if err != nil {
		return err
	}
	m := tpsRe.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("no tps in pgbench's output:\n%s", out)
	}
	tps, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return fmt.Errorf("pgbench tps %q: %w", m[1], err)
	}
	b.report.PGBench = &PGBenchResult{Scale: o.PGBenchScale, Clients: o.PGBenchClients, Seconds: secs, TPS: tps}
	return nil
}

// pgbenchBinary finds pgbench next to the server binaries, or on PATH.
func pgbenchBinary() (string, error) {
	if dir, err := pgserver.FindBinaries(); err == nil {
		if p := filepath.Join(dir, "pgbench"); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no pgbench next to the PostgreSQL binaries or on PATH (Debian/Ubuntu: apt-get install postgresql-contrib or postgresql)")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
