// Package dockertest holds helpers for tests that run against a real Docker
// engine.
//
// Tests call [Require] to get a client (the test is skipped when no engine
// answers, or fails when the CI environment variable is set), and
// [BuildWorkload] to get the tag of an image of testdata/workload, a small
// static program that logs, allocates, serves, sleeps and exits on demand.
//
// The workload image is built once per test process. A package whose tests
// call BuildWorkload must remove it after its tests have run, from TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		dockertest.Cleanup()
//		os.Exit(code)
//	}
//
// Images and containers this package creates carry the label orch.test=1, so
// that leftovers from a crashed test run can be found with
// `docker ps -a --filter label=orch.test=1`.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// TestLabel marks every image and container made for tests.
const TestLabel = "orch.test"

// Require connects to the Docker engine named by the environment
// (DOCKER_HOST and friends) and pings it. When no engine answers it fails the
// test if the environment variable CI is non-empty, and skips it otherwise.
// The client is closed when the test ends.
func Require(t testing.TB) *client.Client {
	t.Helper()
	cli, err := connect()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("dockertest: no Docker engine (CI is set, so this is fatal): %v", err)
		}
		t.Skipf("dockertest: skipping, no Docker engine answers (set DOCKER_HOST, or start Docker; with CI set this fails instead): %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	shareEngine()
	return cli
}

func connect() (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}

var workload struct {
	once sync.Once
	mu   sync.Mutex // guards tag and cli against Cleanup
	tag  string
	cli  *client.Client
	err  error
}

// BuildWorkload returns the tag of a Docker image of testdata/workload,
// building it the first time it is called in the process: the program is
// compiled with CGO_ENABLED=0 and packed FROM scratch, with no pull and no
// BuildKit. The tag is orch-workload:test-<random hex> and the image carries
// the label orch.test=1. The image lives until [Cleanup].
//
// BuildWorkload calls [Require] first, so it skips or fails the test in the
// same way when there is no engine.
func BuildWorkload(t testing.TB) string {
	t.Helper()
	Require(t)
	workload.once.Do(func() {
		tag, cli, err := buildWorkload()
		workload.mu.Lock()
		workload.tag, workload.cli, workload.err = tag, cli, err
		workload.mu.Unlock()
	})
	workload.mu.Lock()
	defer workload.mu.Unlock()
	if workload.err != nil {
		t.Fatalf("dockertest: build workload image: %v", workload.err)
	}
	if workload.tag == "" {
		t.Fatalf("dockertest: BuildWorkload called after Cleanup")
	}
	return workload.tag
}

// Cleanup removes the workload image built by [BuildWorkload], and any
// container still using it. Call it from TestMain after m.Run. It does
// nothing if the image was never built.
func Cleanup() {
	workload.mu.Lock()
	defer workload.mu.Unlock()
	if workload.cli == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if workload.tag != "" {
		// Containers are not removed here by image ("ancestor"): builds of
		// the same workload in other test processes share the image id, and
		// that filter would kill their containers. Tests remove their own,
		// by label.
		_, err := workload.cli.ImageRemove(ctx, workload.tag, image.RemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			fmt.Fprintf(os.Stderr, "dockertest: remove image %s: %v\n", workload.tag, err)
		}
		workload.tag = ""
	}
	workload.cli.Close()
	workload.cli = nil
}

// CleanupContainers force-removes every container, running or not, that
// carries all of the given labels, and reports how many it removed. With no
// labels it removes nothing.
func CleanupContainers(ctx context.Context, cli *client.Client, labels map[string]string) (int, error) {
	if len(labels) == 0 {
		return 0, errors.New("dockertest: CleanupContainers needs at least one label")
	}
	f := filters.NewArgs()
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return removeContainers(ctx, cli, f)
}

func removeContainers(ctx context.Context, cli *client.Client, f filters.Args) (int, error) {
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	n := 0
	var errs []error
	for _, c := range list {
		err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		switch {
		case err == nil:
			n++
		case cerrdefs.IsNotFound(err):
		default:
			errs = append(errs, fmt.Errorf("remove container %.12s: %w", c.ID, err))
		}
	}
	return n, errors.Join(errs...)
}

// RandomHex returns n random bytes as hex, for unique names and labels.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func buildWorkload() (tag string, cli *client.Client, err error) {
	bin, err := compileWorkload()
	if err != nil {
		return "", nil, err
	}
	root, err := moduleRoot()
	if err != nil {
		return "", nil, err
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "testdata", "workload", "Dockerfile"))
	if err != nil {
		return "", nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, dockerfile},
		{"workload", 0o755, bin},
	} {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", nil, err
	}

	cli, err = connect()
	if err != nil {
		return "", nil, err
	}
	buildID := RandomHex(6)
	tag = "orch-workload:test-" + buildID
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:       []string{tag},
		Dockerfile: "Dockerfile",
		// The build's own label makes its image unique: the workload
		// builds byte for byte the same, and tests in other processes must
		// not share (and so remove, or be kept from removing) one image.
		// The builder adds one LABEL step per label in key order: the
		// unique one sorts first, or the image would descend from a step
		// every build shares.
		Labels:      map[string]string{"orch.image.build": buildID, TestLabel: "1"},
		Version:     build.BuilderV1,
		PullParent:  false,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		cli.Close()
		return "", nil, fmt.Errorf("image build: %w", err)
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
			cli.Close()
			return "", nil, fmt.Errorf("image build: read output: %w", err)
		}
		out.WriteString(msg.Stream)
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			msg.Error = msg.ErrorDetail.Message
		}
		if msg.Error != "" {
			cli.Close()
			return "", nil, fmt.Errorf("image build: %s\n%s", msg.Error, out.String())
		}
	}
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		cli.Close()
		return "", nil, fmt.Errorf("image build: built image is missing (%w); output:\n%s", err, out.String())
	}
	return tag, cli, nil
}

// compileWorkload builds testdata/workload as a static binary and returns it.
func compileWorkload() ([]byte, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "orch-workload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "workload")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/workload")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./testdata/workload: %w\n%s", err, b)
	}
	return os.ReadFile(out)
}

// moduleRoot walks up from the working directory to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("dockertest: no go.mod above the working directory")
		}
		dir = parent
	}
}
