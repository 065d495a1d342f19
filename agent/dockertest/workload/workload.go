// Package workload builds the Docker image of testdata/workload, the small
// static program that logs, allocates, serves, sleeps and exits on demand,
// which the Docker tests (through dockertest) and `orch bench` run. It does
// not import testing, so the orch binary may link it.
package workload

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// ErrNoSource means the working directory is not inside the orch
// repository, whose testdata/workload the image is built from.
var ErrNoSource = errors.New("not inside the orch repository (no testdata/workload)")

// ErrNoGo means there is no go command to compile the workload with.
var ErrNoGo = errors.New("no go command on PATH")

// Build builds the workload image and tags it tag: the program is compiled
// with CGO_ENABLED=0 and packed FROM scratch with testdata/workload's
// Dockerfile, with no pull and no BuildKit. The image carries labels, by
// which its maker finds and removes it. Build fails with ErrNoSource or
// ErrNoGo (wrapped) when it cannot build here at all.
func Build(ctx context.Context, cli *client.Client, tag string, labels map[string]string) error {
	root, err := Source()
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("go"); err != nil {
		return ErrNoGo
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "testdata", "workload", "Dockerfile"))
	if err != nil {
		return err
	}
	prog, err := compile(ctx, root)
	if err != nil {
		return err
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	now := time.Now()
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, dockerfile}, {"workload", 0o755, prog}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, &tarball, build.ImageBuildOptions{
		Tags: []string{tag}, Dockerfile: "Dockerfile", Labels: labels,
		Version: build.BuilderV1, PullParent: false, Remove: true, ForceRemove: true,
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	defer resp.Body.Close()
	// The build reports its errors in the stream, not in the HTTP status.
	var out strings.Builder
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("building %s: reading its output: %w", tag, err)
		}
		out.WriteString(msg.Stream)
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			msg.Error = msg.ErrorDetail.Message
		}
		if msg.Error != "" {
			return fmt.Errorf("building %s: %s\n%s", tag, msg.Error, out.String())
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		return fmt.Errorf("building %s: the image is missing afterwards (%w); output:\n%s", tag, err, out.String())
	}
	return nil
}

// compile builds testdata/workload as a static Linux binary and returns it.
func compile(ctx context.Context, root string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "orch-workload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "workload")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/workload")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./testdata/workload: %w\n%s", err, out)
	}
	return os.ReadFile(bin)
}

// Source finds the root of the orch repository at or above the working
// directory: the directory whose go.mod is orch's and which holds
// testdata/workload. It fails with ErrNoSource outside one.
func Source() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(mod), "module github.com/orchd/orch\n") {
			if _, err := os.Stat(filepath.Join(dir, "testdata", "workload", "Dockerfile")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoSource
		}
		dir = parent
	}
}
