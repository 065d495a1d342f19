package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// DockerRuntime is the Runtime backed by a Docker engine, spoken to through
// the Engine API.
type DockerRuntime struct {
	cli *client.Client
	oom *oomWatch

	logMu     sync.Mutex
	logDriver string // the engine's default log driver, once known
}

var _ Runtime = (*DockerRuntime)(nil)

// NewDockerRuntime connects to the Docker engine named by the environment
// (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION),
// negotiating the API version with the engine. An engine that does not
// answer yet is not an error: negotiation is retried on the first request,
// and Ping tells whether the engine is there.
func NewDockerRuntime(ctx context.Context) (*DockerRuntime, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker: new client: %w", err)
	}
	cli.NegotiateAPIVersion(ctx)
	return &DockerRuntime{cli: cli, oom: newOOMWatch(cli)}, nil
}

// Close releases the client's connections.
func (d *DockerRuntime) Close() error {
	d.oom.close()
	return d.cli.Close()
}

// Ping reports whether the engine answers.
func (d *DockerRuntime) Ping(ctx context.Context) error {
	if _, err := d.cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker: ping: %w", err)
	}
	return nil
}

// Start makes sure spec.Image is present, pulling it only when it is missing
// locally, then creates and starts the container. The image's entrypoint is
// kept; spec.Command becomes its arguments (Docker's Cmd). Image failures
// wrap ErrImage.
//
// If a container named spec.Name already exists and carries the same
// orch.task and orch.attempt labels as spec, Start returns its id (starting
// it if it was created but never started): starting the same attempt twice is
// harmless. A container of that name belonging to anything else is an error.
//
// If the container is created but fails to start, it is removed.
func (d *DockerRuntime) Start(ctx context.Context, spec ContainerSpec) (string, error) {
	if spec.Image == "" {
		return "", fmt.Errorf("docker: start %s: %w: no image given", spec.Name, ErrImage)
	}
	cfg, hc, err := dockerConfig(spec, d.defaultLogDriver(ctx))
	if err != nil {
		return "", fmt.Errorf("docker: start %s: %w", spec.Name, err)
	}
	if err := d.ensureImage(ctx, spec.Image, spec.RegistryAuth); err != nil {
		return "", fmt.Errorf("docker: start %s: %w", spec.Name, err)
	}
	if err := d.ensureVolumes(ctx, spec); err != nil {
		return "", fmt.Errorf("docker: start %s: %w", spec.Name, err)
	}

	created, err := d.cli.ContainerCreate(ctx, cfg, hc, nil, nil, spec.Name)
	if err != nil {
		if cerrdefs.IsConflict(err) && spec.Name != "" {
			return d.adopt(ctx, spec, err)
		}
		return "", fmt.Errorf("docker: create %s: %w", spec.Name, err)
	}
	if err := d.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		// Do not leave a created container behind: it would hold the name
		// and, with fixed host ports, nothing else. The caller's context may
		// be what failed, so clean up with a context of our own.
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rmErr := d.cli.ContainerRemove(rmCtx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); rmErr != nil && !cerrdefs.IsNotFound(rmErr) {
			return "", fmt.Errorf("docker: start %s: %w (and removing the created container %.12s failed: %v)", spec.Name, err, created.ID, rmErr)
		}
		return "", fmt.Errorf("docker: start %s: %w", spec.Name, err)
	}
	return created.ID, nil
}

// adopt handles a name conflict on create: the existing container is ours if
// it belongs to the same task and attempt.
func (d *DockerRuntime) adopt(ctx context.Context, spec ContainerSpec, createErr error) (string, error) {
	existing, err := d.cli.ContainerInspect(ctx, spec.Name)
	if err != nil {
		return "", fmt.Errorf("docker: create %s: %w (and inspecting the existing container failed: %v)", spec.Name, createErr, err)
	}
	var labels map[string]string
	if existing.Config != nil {
		labels = existing.Config.Labels
	}
	task, attempt := spec.Labels[LabelTask], spec.Labels[LabelAttempt]
	if task == "" || labels[LabelTask] != task || labels[LabelAttempt] != attempt {
		return "", fmt.Errorf("docker: create %s: name is taken by container %.12s (%s=%q %s=%q), which is not this task attempt (%s=%q %s=%q): %w",
			spec.Name, existing.ID, LabelTask, labels[LabelTask], LabelAttempt, labels[LabelAttempt],
			LabelTask, task, LabelAttempt, attempt, createErr)
	}
	if existing.State != nil && existing.State.Status == container.StateCreated {
		// A previous Start died between create and start.
		if err := d.cli.ContainerStart(ctx, existing.ID, container.StartOptions{}); err != nil {
			return "", fmt.Errorf("docker: start existing %s: %w", spec.Name, err)
		}
	}
	return existing.ID, nil
}

// ensureImage pulls ref unless it is already present locally.
func (d *DockerRuntime) ensureImage(ctx context.Context, ref string, auth func(context.Context) (string, error)) error {
	_, err := d.cli.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsInvalidArgument(err):
		return fmt.Errorf("image %s: %w: %w", ref, ErrImage, err)
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect image %s: %w", ref, err)
	}

	var opts image.PullOptions
	if auth != nil {
		var err error
		if opts.RegistryAuth, err = auth(ctx); err != nil {
			return fmt.Errorf("pull image %s: %w", ref, err)
		}
	}
	if err := d.pull(ctx, ref, opts); err != nil {
		if ctx.Err() != nil {
			// Cancelled, not an image problem.
			return fmt.Errorf("pull image %s: %w", ref, err)
		}
		return fmt.Errorf("pull image %s: %w: %w", ref, ErrImage, err)
	}
	return nil
}

func (d *DockerRuntime) pull(ctx context.Context, ref string, opts image.PullOptions) error {
	rc, err := d.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return err
	}
	defer rc.Close()
	// A pull that fails once started reports the failure in the stream.
	dec := json.NewDecoder(rc)
	for {
		var msg streamMessage
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read pull progress: %w", err)
		}
		if err := msg.err(); err != nil {
			return err
		}
	}
}

// streamMessage is the part of one message of a Docker progress stream
// (pull, build) that tells whether it failed.
type streamMessage struct {
	Error *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	ErrorText string `json:"error"`
}

func (m streamMessage) err() error {
	switch {
	case m.Error != nil && m.Error.Message != "":
		return errors.New(m.Error.Message)
	case m.ErrorText != "":
		return errors.New(m.ErrorText)
	}
	return nil
}

// defaultLogDriver asks the engine once which log driver containers get by
// default ("" while it does not answer: then no log options are set).
func (d *DockerRuntime) defaultLogDriver(ctx context.Context) string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	if d.logDriver == "" {
		if info, err := d.cli.Info(ctx); err == nil {
			d.logDriver = info.LoggingDriver
		}
	}
	return d.logDriver
}

// dockerConfig translates a spec into Docker's container and host configs;
// logDriver is the engine's default log driver (see logConfig).
func dockerConfig(spec ContainerSpec, logDriver string) (*container.Config, *container.HostConfig, error) {
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		if k == "" || strings.Contains(k, "=") {
			return nil, nil, fmt.Errorf("bad environment variable name %q", k)
		}
		env = append(env, k+"="+v)
	}
	sort.Strings(env)

	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for _, p := range spec.Ports {
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			return nil, nil, fmt.Errorf("port %d: protocol %q is neither tcp nor udp", p.ContainerPort, p.Protocol)
		}
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return nil, nil, fmt.Errorf("container port %d is out of range", p.ContainerPort)
		}
		if p.HostPort < 0 || p.HostPort > 65535 {
			return nil, nil, fmt.Errorf("host port %d is out of range", p.HostPort)
		}
		port, err := nat.NewPort(proto, strconv.Itoa(p.ContainerPort))
		if err != nil {
			return nil, nil, fmt.Errorf("port %d/%s: %w", p.ContainerPort, proto, err)
		}
		hostPort := "" // empty: Docker picks a free port
		if p.HostPort > 0 {
			hostPort = strconv.Itoa(p.HostPort)
		}
		exposed[port] = struct{}{}
		bindings[port] = append(bindings[port], nat.PortBinding{HostIP: "0.0.0.0", HostPort: hostPort})
	}

	cfg := &container.Config{
		Image:  spec.Image,
		Env:    env,
		Labels: spec.Labels,
	}
	if len(spec.Command) > 0 {
		cfg.Cmd = spec.Command
	}
	if len(exposed) > 0 {
		cfg.ExposedPorts = exposed
	}

	// Privileges and the host's network only for a spec that asks: the
	// agent passes those on only for an admin's task on a node that allows it.
	hc := &container.HostConfig{
		Privileged:   spec.Privileged,
		NetworkMode:  container.NetworkMode(network.NetworkDefault),
		PortBindings: bindings,
		LogConfig:    logConfig(logDriver, spec),
		Mounts:       dockerMounts(spec),
	}
	if !spec.Privileged {
		hc.SecurityOpt = []string{"no-new-privileges:true"}
	}
	if spec.PidsLimit > 0 {
		pids := spec.PidsLimit
		hc.Resources.PidsLimit = &pids
	}
	switch spec.Network {
	case "", "bridge":
	case "host", "none":
		hc.NetworkMode = container.NetworkMode(spec.Network)
	default:
		return nil, nil, fmt.Errorf("network %q is neither bridge, host nor none", spec.Network)
	}
	if spec.CPUMillis > 0 {
		if spec.CPUMillis > math.MaxInt64/1_000_000 {
			return nil, nil, fmt.Errorf("cpu %dm is out of range", spec.CPUMillis)
		}
		hc.Resources.NanoCPUs = spec.CPUMillis * 1_000_000
	}
	if spec.MemoryBytes > 0 {
		hc.Resources.Memory = spec.MemoryBytes
		// Memory plus swap equal to memory: no swap on top of the limit, so
		// a task that outgrows it is OOM-killed instead of swapping.
		hc.Resources.MemorySwap = spec.MemoryBytes
	}
	return cfg, hc, nil
}

// Wait blocks until the container is not running, which is at once for one
// that has already exited, and returns how it ended.
func (d *DockerRuntime) Wait(ctx context.Context, id string) (Exit, error) {
	resC, errC := d.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	var res container.WaitResponse
	select {
	case res = <-resC:
	case err := <-errC:
		return Exit{}, fmt.Errorf("docker: wait %.12s: %w", id, err)
	case <-ctx.Done():
		return Exit{}, fmt.Errorf("docker: wait %.12s: %w", id, ctx.Err())
	}

	exit := Exit{Code: int(res.StatusCode)}
	if res.Error != nil {
		exit.Error = res.Error.Message
	}
	info, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			// Removed as soon as it stopped: the wait result is all there is.
			return exit, nil
		}
		return exit, fmt.Errorf("docker: inspect %.12s after wait: %w", id, err)
	}
	if st := info.State; st != nil {
		exit.Code = st.ExitCode
		exit.OOMKilled = st.OOMKilled
		if st.Error != "" {
			exit.Error = st.Error
		}
		// A SIGKILL that orch did not send may be the kernel's OOM killer,
		// which the flag can miss: the engine's oom event tells.
		if exit.Code == 137 && !exit.OOMKilled {
			finished, err := time.Parse(time.RFC3339Nano, st.FinishedAt)
			if err != nil {
				finished = time.Now()
			}
			exit.OOMKilled = d.oom.oomKilled(ctx, finished, id, info.ID)
		}
	}
	return exit, nil
}

// Stop sends the container SIGTERM and kills it if it is still running after
// grace, rounded up to whole seconds. A container that is gone or already
// stopped is not an error.
func (d *DockerRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	secs := 0
	if grace > 0 {
		secs = int(math.Ceil(grace.Seconds()))
	}
	d.oom.stopRequested(id)
	err := d.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: stop %.12s: %w", id, err)
	}
	return nil
}

// Remove force-removes the container, killing it if it runs. A container
// that is gone, or that Docker is already removing, is not an error.
func (d *DockerRuntime) Remove(ctx context.Context, id string) error {
	d.oom.stopRequested(id)
	err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		d.oom.forget(id)
		return nil
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress"):
		return nil
	}
	return fmt.Errorf("docker: remove %.12s: %w", id, err)
}

// List returns every container, running or stopped, that carries all of the
// given labels. For a container that is not running it reports the exit code
// and error from inspecting it.
func (d *DockerRuntime) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	f := filters.NewArgs()
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	summaries, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker: list containers: %w", err)
	}
	out := make([]Container, 0, len(summaries))
next:
	for _, s := range summaries {
		for k, v := range labels { // the engine filtered already; be sure
			if got, ok := s.Labels[k]; !ok || got != v {
				continue next
			}
		}
		c := Container{ID: s.ID, Labels: s.Labels}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		switch s.State {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			c.Running = true
		default:
			info, err := d.cli.ContainerInspect(ctx, s.ID)
			switch {
			case cerrdefs.IsNotFound(err):
				continue // removed since it was listed
			case err != nil:
				return nil, fmt.Errorf("docker: inspect %.12s: %w", s.ID, err)
			}
			if st := info.State; st != nil {
				c.Running = st.Running
				c.ExitCode = st.ExitCode
				c.Error = st.Error
				if st.OOMKilled && c.Error == "" {
					c.Error = "OOM killed"
				}
			}
		}
		out = append(out, c)
	}
	return out, nil
}
