package main

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
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// buildWorkload builds the test workload image from testdata/workload of
// the orch repository the bench runs in: the program compiled statically
// and packed FROM scratch, no pull, no BuildKit. The image is tagged
// orch-bench-workload:<run> and labelled, and removed by removeImage.
func (b *bench) buildWorkload(ctx context.Context, cli *client.Client) (string, error) {
	root, err := orchRepo()
	if err != nil {
		return "", skipError{err.Error() + ": run the bench inside the orch repository or give --image"}
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", skipError{"building the workload image needs the go command: give --image instead"}
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "testdata", "workload", "Dockerfile"))
	if err != nil {
		return "", err
	}
	bin := filepath.Join(b.dir, "workload")
	gobuild := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/workload")
	gobuild.Dir = root
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := gobuild.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./testdata/workload: %w\n%s", err, out)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, dockerfile}, {"workload", 0o755, prog}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	tag := "orch-bench-workload:" + b.id
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	resp, err := cli.ImageBuild(ctx, &tarball, build.ImageBuildOptions{
		Tags: []string{tag}, Dockerfile: "Dockerfile", Labels: map[string]string{labelBench: b.id},
		Version: build.BuilderV1, Remove: true, ForceRemove: true,
	})
	if err != nil {
		return "", fmt.Errorf("building %s: %w", tag, err)
	}
	defer resp.Body.Close()
	// The build reports its errors in the stream, not in the HTTP status.
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("building %s: %w", tag, err)
		}
		if msg.Error != "" {
			b.removeImage(cli, tag)
			return "", fmt.Errorf("building %s: %s", tag, msg.Error)
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		return "", fmt.Errorf("building %s: the image is missing afterwards: %w", tag, err)
	}
	return tag, nil
}

// removeImage removes an image the bench built.
func (b *bench) removeImage(cli *client.Client, tag string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
		b.logf("removing image %s: %v", tag, err)
	}
}

// orchRepo finds the root of the orch repository above the working directory.
func orchRepo() (string, error) {
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
			return "", errors.New("not inside the orch repository (no testdata/workload)")
		}
		dir = parent
	}
}
