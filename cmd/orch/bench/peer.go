package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/orchd/orch/agent/dockertest/workload"
)

// PeerResult is what River, the Go job queue on PostgreSQL orch's queue half
// is most like, did against the same server in the same run: the yardstick
// of the drain phase.
type PeerResult struct {
	Peer          string  `json:"peer"`
	Version       string  `json:"version"`
	Jobs          int     `json:"jobs"`
	Workers       int     `json:"workers"`
	InsertSeconds float64 `json:"insert_s"`
	WorkSeconds   float64 `json:"work_s"`
	JobsPerSec    float64 `json:"jobs_per_s"`
}

// peerRiver builds riverpeer (a module of its own beside this package, so
// that River stays out of orch's binary) and runs it against the bench's
// server: DrainTasks no-op jobs inserted in batches, then worked by one
// client with 200 workers.
func (b *bench) peerRiver(ctx context.Context) error {
	repo, err := workload.Source()
	if errors.Is(err, workload.ErrNoSource) {
		return skipError{why: "riverpeer is built from the orch source tree; run orch bench inside it"}
	}
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return skipError{why: "no go command on PATH to build riverpeer with"}
	}
	bin := filepath.Join(b.dir, "riverpeer")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	build.Dir = filepath.Join(repo, "cmd", "orch", "bench", "riverpeer")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building riverpeer: %v\n%s", err, out)
	}
	b.logf("peer-river: %d no-op jobs, one client with 200 workers", b.opts.DrainTasks)
	run := exec.CommandContext(ctx, bin, "-database-url", b.url, "-jobs", strconv.Itoa(b.opts.DrainTasks), "-workers", "200")
	var stderr bytes.Buffer
	run.Stderr = &stderr
	out, err := run.Output()
	if err != nil {
		return fmt.Errorf("riverpeer: %v\n%s", err, stderr.String())
	}
	r := &PeerResult{Peer: "river"}
	if err := json.Unmarshal(out, r); err != nil {
		return fmt.Errorf("reading riverpeer's figures %q: %w", out, err)
	}
	b.report.PeerRiver = r
	return nil
}
