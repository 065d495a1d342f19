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
// or, in a package that also uses pgtest, pgtest.Main(m, dockertest.Cleanup).
//
// Images and containers this package creates carry the label orch.test=1, so
// that leftovers from a crashed test run can be found with
// `docker ps -a --filter label=orch.test=1`.
package dockertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/orchd/orch/agent/dockertest/workload"
	"github.com/orchd/orch/queue/postgres/proc"
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

var built struct {
	once sync.Once
	mu   sync.Mutex // guards tag and cli against Cleanup
	tag  string
	cli  *client.Client
	err  error
}

// BuildWorkload returns the tag of a Docker image of testdata/workload,
// building it with [workload.Build] the first time it is called in the
// process. The tag is orch-workload:test-<random hex> and the image carries
// the label orch.test=1. The image lives until [Cleanup].
//
// BuildWorkload calls [Require] first, so it skips or fails the test in the
// same way when there is no engine.
func BuildWorkload(t testing.TB) string {
	t.Helper()
	Require(t)
	built.once.Do(func() {
		tag, cli, err := buildWorkload()
		built.mu.Lock()
		built.tag, built.cli, built.err = tag, cli, err
		built.mu.Unlock()
	})
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.err != nil {
		t.Fatalf("dockertest: build workload image: %v", built.err)
	}
	if built.tag == "" {
		t.Fatalf("dockertest: BuildWorkload called after Cleanup")
	}
	return built.tag
}

// Cleanup removes the workload image built by [BuildWorkload], and any
// container still using it. Call it from TestMain after m.Run. It does
// nothing if the image was never built.
func Cleanup() {
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.cli == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if built.tag != "" {
		// Containers are not removed here by image ("ancestor"): builds of
		// the same workload in other test processes share the image id, and
		// that filter would kill their containers. Tests remove their own,
		// by label.
		_, err := built.cli.ImageRemove(ctx, built.tag, image.RemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			fmt.Fprintf(os.Stderr, "dockertest: remove image %s: %v\n", built.tag, err)
		}
		built.tag = ""
	}
	built.cli.Close()
	built.cli = nil
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

func buildWorkload() (tag string, cli *client.Client, err error) {
	cli, err = connect()
	if err != nil {
		return "", nil, err
	}
	buildID := proc.RandomHex(6)
	tag = "orch-workload:test-" + buildID
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The build's own label makes its image unique: the workload builds
	// byte for byte the same, and tests in other processes must not share
	// (and so remove, or be kept from removing) one image. The builder adds
	// one LABEL step per label in key order: the unique one sorts first, or
	// the image would descend from a step every build shares.
	err = workload.Build(ctx, cli, tag, map[string]string{"orch.image.build": buildID, TestLabel: "1"})
	if err != nil {
		cli.Close()
		return "", nil, err
	}
	return tag, cli, nil
}
