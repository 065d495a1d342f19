package bench

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/google/uuid"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/agent/dockertest/workload"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

// labelBench marks the containers and images the bench makes itself.
const labelBench = "orch.bench"

// dockerOpTimeout bounds one container start, so that an engine that hangs
// fails the phase instead of the whole bench.
const dockerOpTimeout = 2 * time.Minute

// docker compares create→running through orch (API → Postgres → agent with
// the Docker runtime, a process of the orch binary) with `docker run -d` of the
// same image, and with the engine's API called directly: runs of each,
// interleaved in rotating order so that a drift of the machine hits all
// alike. The ratio is of the medians of what a user waits for: from the
// request to seeing the container running.
func (b *bench) docker(ctx context.Context) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return skipError{fmt.Sprintf("no Docker client: %v", err)}
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = cli.Ping(pctx)
	cancel()
	if err != nil {
		return skipError{fmt.Sprintf("no Docker engine answers: %v", err)}
	}
	dockerCLI, err := exec.LookPath("docker")
	if err != nil {
		return skipError{"no docker command on PATH to compare with"}
	}
	defer b.removeBenchContainers(cli)
	image := b.opts.Image
	if image == "" {
		if image, err = b.buildWorkload(ctx, cli); err != nil {
			return err
		}
		defer b.removeImage(cli, image)
	} else if _, err := cli.ImageInspect(ctx, image); err != nil {
		return fmt.Errorf("image %s: %w (the bench does not pull: build or pull it first)", image, err)
	}

	_, orch, err := b.coordinatorClient(ctx)
	if err != nil {
		return err
	}
	ag, node, err := b.startAgent(ctx, "docker", "docker")
	if err != nil {
		return err
	}
	defer ag.stop()
	defer b.removeNodeContainers(cli, node)

	runs := map[string]func(context.Context, int) (time.Duration, error){
		"orch": func(ctx context.Context, _ int) (time.Duration, error) { return b.runOrch(ctx, orch, image) },
		"docker run": func(ctx context.Context, i int) (time.Duration, error) {
			return b.runDockerCLI(ctx, cli, dockerCLI, image, i)
		},
		"engine API": func(ctx context.Context, i int) (time.Duration, error) { return b.runEngineAPI(ctx, cli, image, i) },
	}
	order := []string{"orch", "docker run", "engine API"}
	times := map[string][]time.Duration{}
	// Round 0 warms the engine and the page cache up and is not counted.
	for round := 0; round <= b.opts.DockerRuns; round++ {
		for k := range order {
			what := order[(round+k)%len(order)]
			d, err := runs[what](ctx, round*len(order)+k)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", what, round, err)
			}
			if round > 0 {
				times[what] = append(times[what], d)
			}
		}
	}
	rss, err := ag.peakRSS()
	if err != nil {
		return err
	}
	ag.stop()
	if _, err := b.store.SetCordoned(ctx, node.String(), true); err != nil {
		return err
	}
	r := &DockerResult{Image: image, Runs: b.opts.DockerRuns, AgentPeakRSS: rss,
		OrchMedianMS:      ms(percentile(times["orch"], 50)),
		DockerRunMedianMS: ms(percentile(times["docker run"], 50)),
		EngineAPIMedianMS: ms(percentile(times["engine API"], 50)),
	}
	if b.dockerDB != nil {
		r.OrchDBMedianMS = ms(percentile(b.dockerDB, 50))
	}
	r.Ratio = r.OrchMedianMS / r.DockerRunMedianMS
	b.report.Docker = r
	return nil
}

// runOrch creates a task that sleeps forever, waits (polling the database
// every 2 ms) until it runs, then stops it and waits until it is stopped.
// It returns the time from the request to seeing it running, and keeps the
// database's own create→running figure (created_at to started_at).
func (b *bench) runOrch(ctx context.Context, c *coordinator.Client, image string) (time.Duration, error) {
	start := time.Now()
	t, err := c.CreateTask(ctx, coordinator.TaskRequest{Image: image, Command: []string{"-sleep", "forever"}})
	if err != nil {
		return 0, err
	}
	if t, err = b.pollTask(ctx, t.ID, 2*time.Millisecond, func(s queue.State) bool { return s == queue.Running || s.Terminal() }); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if t.State != queue.Running {
		return 0, fmt.Errorf("task %s ended %s before running: %s", t.ID, t.State, t.Error)
	}
	if lat, err := b.store.StateLatencies(ctx, []uuid.UUID{t.ID}, queue.Running); err == nil && len(lat) == 1 {
		b.dockerDB = append(b.dockerDB, lat[0])
	}
	if _, err := c.DeleteTask(ctx, t.ID.String()); err != nil {
		return 0, err
	}
	if _, err := b.pollTask(ctx, t.ID, 20*time.Millisecond, queue.State.Terminal); err != nil {
		return 0, err
	}
	return took, nil
}

// pollTask reads a task every interval until done accepts its state, for at
// most a minute.
func (b *bench) pollTask(ctx context.Context, id uuid.UUID, every time.Duration, done func(queue.State) bool) (queue.Task, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		t, err := b.store.GetTask(ctx, id)
		if err != nil {
			return t, err
		}
		if done(t.State) {
			return t, nil
		}
		if time.Now().After(deadline) {
			return t, fmt.Errorf("task %s still %s after a minute", id, t.State)
		}
		if !sleepCtx(ctx, every) {
			return t, ctx.Err()
		}
	}
}

// runDockerCLI times `docker run -d` of image (it returns once the
// container has started), then removes the container.
func (b *bench) runDockerCLI(ctx context.Context, cli *client.Client, dockerCLI, image string, i int) (time.Duration, error) {
	name := fmt.Sprintf("orch-bench-%s-run-%d", b.id, i)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, dockerOpTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, dockerCLI, "run", "-d", "--label", labelBench+"="+b.id, "--name", name,
		image, "-sleep", "forever").CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("docker run: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return took, removeContainer(cli, name)
}

// runEngineAPI times create and start through the engine's API, as the
// agent's runtime does it, then removes the container.
func (b *bench) runEngineAPI(ctx context.Context, cli *client.Client, image string, i int) (time.Duration, error) {
	name := fmt.Sprintf("orch-bench-%s-api-%d", b.id, i)
	ctx, cancel := context.WithTimeout(ctx, dockerOpTimeout)
	defer cancel()
	start := time.Now()
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"-sleep", "forever"},
		Labels: map[string]string{labelBench: b.id}}, &container.HostConfig{}, nil, nil, name)
	if err != nil {
		return 0, err
	}
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return 0, errors.Join(err, removeContainer(cli, c.ID))
	}
	took := time.Since(start)
	return took, removeContainer(cli, c.ID)
}

func removeContainer(cli *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	return nil
}

// buildWorkload builds the test workload image from testdata/workload of
// the orch repository the bench runs in. The image is tagged
// orch-bench-workload:<run> and labelled, and removed by removeImage.
func (b *bench) buildWorkload(ctx context.Context, cli *client.Client) (string, error) {
	tag := "orch-bench-workload:" + b.id
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	err := workload.Build(ctx, cli, tag, map[string]string{labelBench: b.id})
	switch {
	case errors.Is(err, workload.ErrNoSource):
		return "", skipError{err.Error() + ": run the bench inside the orch repository or give --image"}
	case errors.Is(err, workload.ErrNoGo):
		return "", skipError{"building the workload image needs the go command: give --image instead"}
	}
	return tag, err
}

// removeImage removes an image the bench built.
func (b *bench) removeImage(cli *client.Client, tag string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
		b.logf("removing image %s: %v", tag, err)
	}
}

// removeBenchContainers removes what the comparison runs left, if a run
// failed halfway.
func (b *bench) removeBenchContainers(cli *client.Client) {
	b.removeLabelled(cli, labelBench+"="+b.id)
}

// removeNodeContainers removes the containers of the bench's Docker agent:
// an agent leaves its containers running when it stops (a restarted agent
// adopts them), and this node will not come back.
func (b *bench) removeNodeContainers(cli *client.Client, node uuid.UUID) {
	b.removeLabelled(cli, agent.LabelNode+"="+node.String())
}

func (b *bench) removeLabelled(cli *client.Client, label string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
	if err != nil {
		b.logf("listing containers labelled %s: %v", label, err)
		return
	}
	for _, c := range list {
		if err := removeContainer(cli, c.ID); err != nil {
			b.logf("%v", err)
		}
	}
}
