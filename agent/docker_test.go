package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/orchd/orch/agent/dockertest"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/proc"
)

const labelTestRun = "orch.test.run"

// dockerTest is one test's view of the engine. Every container it makes is
// labelled with a run id unique to the test, and removed when the test ends.
type dockerTest struct {
	t      *testing.T
	cli    *client.Client
	rt     *DockerRuntime
	image  string
	run    string
	labels map[string]string
}

func newDockerTest(t *testing.T) *dockerTest {
	t.Helper()
	cli := dockertest.Require(t)
	img := dockertest.BuildWorkload(t)
	rt, err := NewDockerRuntime(context.Background())
	if err != nil {
		t.Fatalf("NewDockerRuntime: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	run := proc.RandomHex(6)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := dockertest.CleanupContainers(ctx, cli, map[string]string{labelTestRun: run}); err != nil {
			t.Errorf("cleanup containers: %v", err)
		}
	})
	return &dockerTest{
		t: t, cli: cli, rt: rt, image: img, run: run,
		labels: map[string]string{dockertest.TestLabel: "1", labelTestRun: run},
	}
}

// spec returns a spec for one attempt of a task named name, running the
// workload with args.
func (d *dockerTest) spec(name string, args ...string) ContainerSpec {
	labels := map[string]string{
		LabelTask:    d.run + "-" + name,
		LabelAttempt: "1",
		LabelName:    name,
	}
	for k, v := range d.labels {
		labels[k] = v
	}
	return ContainerSpec{
		Name:    "orch-test-" + d.run + "-" + name,
		Image:   d.image,
		Command: args,
		Labels:  labels,
	}
}

func (d *dockerTest) start(ctx context.Context, spec ContainerSpec) string {
	d.t.Helper()
	id, err := d.rt.Start(ctx, spec)
	if err != nil {
		d.t.Fatalf("Start %s: %v", spec.Name, err)
	}
	return id
}

func (d *dockerTest) inspect(ctx context.Context, id string) container.InspectResponse {
	d.t.Helper()
	info, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		d.t.Fatalf("inspect %.12s: %v", id, err)
	}
	return info
}

// logs is the container's output so far, stdout and stderr.
func (d *dockerTest) logs(ctx context.Context, id string) string {
	d.t.Helper()
	rc, err := d.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		d.t.Fatalf("logs %.12s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		d.t.Fatalf("logs %.12s: %v", id, err)
	}
	return string(b)
}

// waitLog waits until the container's output contains want. The workload
// prints its -logs lines after it has set up its signal handling, so waiting
// for "line 1" before stopping it makes the exit code deterministic.
func (d *dockerTest) waitLog(ctx context.Context, id, want string) {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b := d.logs(ctx, id)
		if strings.Contains(b, want) {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("container %.12s never printed %q; output so far: %q", id, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDockerExitCode(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 3} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			d := newDockerTest(t)
			ctx := testContext(t)
			id := d.start(ctx, d.spec("exit", "-logs", "2", "-exit", strconv.Itoa(code)))
			exit, err := d.rt.Wait(ctx, id)
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if exit.Code != code || exit.OOMKilled || exit.Error != "" {
				t.Errorf("Wait = %+v, want code %d, no OOM, no error", exit, code)
			}
			// Waiting on a container that has already exited returns at once.
			again, err := d.rt.Wait(ctx, id)
			if err != nil || again != exit {
				t.Errorf("second Wait = %+v, %v; want %+v", again, err, exit)
			}
		})
	}
}

func TestDockerResourcesStopRemove(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	spec := d.spec("sleeper", "-logs", "1", "-sleep", "forever")
	spec.CPUMillis = 500
	spec.MemoryBytes = 64 << 20
	spec.Env = map[string]string{"GREETING": "hello world", "EMPTY": ""}
	id := d.start(ctx, spec)

	info := d.inspect(ctx, id)
	if !info.State.Running {
		t.Errorf("state = %+v, want running", info.State)
	}
	hc := info.HostConfig
	if hc.NanoCPUs != 500_000_000 {
		t.Errorf("NanoCPUs = %d, want 5e8", hc.NanoCPUs)
	}
	if hc.Memory != 64<<20 {
		t.Errorf("Memory = %d, want %d", hc.Memory, 64<<20)
	}
	if hc.Privileged {
		t.Errorf("container is privileged")
	}
	if hc.NetworkMode.IsHost() {
		t.Errorf("container uses the host network")
	}
	for k, v := range spec.Labels {
		if got := info.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if !slices.Equal(info.Config.Entrypoint, []string{"/workload"}) {
		t.Errorf("Entrypoint = %q, want the image's [/workload]", info.Config.Entrypoint)
	}
	if !slices.Equal(info.Config.Cmd, spec.Command) {
		t.Errorf("Cmd = %q, want %q", info.Config.Cmd, spec.Command)
	}
	for _, kv := range []string{"GREETING=hello world", "EMPTY="} {
		if !slices.Contains(info.Config.Env, kv) {
			t.Errorf("Env = %q, want it to contain %q", info.Config.Env, kv)
		}
	}
	if name := strings.TrimPrefix(info.Name, "/"); name != spec.Name {
		t.Errorf("name = %q, want %q", name, spec.Name)
	}

	// The workload exits 0 on SIGTERM, well within the grace period.
	d.waitLog(ctx, id, "line 1")
	begin := time.Now()
	if err := d.rt.Stop(ctx, id, 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(begin); took >= 10*time.Second {
		t.Errorf("Stop took %v, the whole grace period; the workload should exit on SIGTERM", took)
	}
	exit, err := d.rt.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if exit.Code != 0 {
		t.Errorf("Wait after Stop = %+v, want code 0", exit)
	}
	// Stopping a stopped container is not an error.
	if err := d.rt.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	if err := d.rt.Remove(ctx, id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := d.cli.ContainerInspect(ctx, id); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect after Remove: err = %v, want not found", err)
	}
	list, err := d.rt.List(ctx, d.labels)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 0 {
		t.Errorf("List after Remove = %+v, want nothing", list)
	}
	// Removing, stopping or waiting on a gone container.
	if err := d.rt.Remove(ctx, id); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if err := d.rt.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("Stop of removed container: %v", err)
	}
	if _, err := d.rt.Wait(ctx, id); !cerrdefs.IsNotFound(err) {
		t.Errorf("Wait of removed container: err = %v, want not found", err)
	}
}

func TestDockerStopKillsAfterGrace(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	id := d.start(ctx, d.spec("stubborn", "-ignore-term", "-logs", "1", "-sleep", "forever"))
	d.waitLog(ctx, id, "line 1")
	begin := time.Now()
	if err := d.rt.Stop(ctx, id, time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	took := time.Since(begin)
	exit, err := d.rt.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if exit.Code != 137 || exit.OOMKilled {
		t.Errorf("Wait = %+v, want code 137 (SIGKILL) and not OOM-killed", exit)
	}
	if took < 900*time.Millisecond {
		t.Errorf("Stop returned after %v, before the 1s grace", took)
	}
}

func TestDockerRemoveRunning(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	id := d.start(ctx, d.spec("doomed", "-sleep", "forever"))
	if err := d.rt.Remove(ctx, id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := d.cli.ContainerInspect(ctx, id); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect after Remove: err = %v, want not found", err)
	}
}

func TestDockerWaitContext(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	id := d.start(ctx, d.spec("sleeper", "-sleep", "forever"))
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if exit, err := d.rt.Wait(short, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %+v, %v; want context.DeadlineExceeded", exit, err)
	}
}

func TestDockerOOMKilled(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	// The delay makes it outgrow its limit as a real task does, after it
	// has started: Docker 20.10 on cgroup v1 loses the OOM event of a
	// process killed within milliseconds of its start (its notifier is not
	// registered yet), and no one can tell that SIGKILL from any other.
	spec := d.spec("hog", "-mem-delay", "500ms", "-mem", "256MiB", "-sleep", "forever")
	spec.MemoryBytes = 32 << 20
	id := d.start(ctx, spec)
	exit, err := d.rt.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !exit.OOMKilled || exit.Code != 137 {
		t.Errorf("Wait = %+v, want OOM-killed with code 137", exit)
	}
}

func TestDockerMissingImage(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	spec := d.spec("ghost")
	spec.Image = "orch-no-such-image-xyz:1"
	id, err := d.rt.Start(ctx, spec)
	if err == nil {
		t.Fatalf("Start of a missing image = %q, want an error", id)
	}
	if !errors.Is(err, ErrImage) {
		t.Errorf("Start error %q does not wrap ErrImage", err)
	}
	// Docker's own words, as the client reports them, come through.
	msg := err.Error()
	if !strings.Contains(msg, "orch-no-such-image-xyz") || !strings.Contains(msg, "Error response from daemon") {
		t.Errorf("Start error %q lacks the image name or Docker's error text", msg)
	}
	t.Logf("missing image: %v", err)
	list, err := d.rt.List(ctx, d.labels)
	if err != nil || len(list) != 0 {
		t.Errorf("List after failed Start = %+v, %v; want nothing", list, err)
	}
}

func TestDockerList(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	a := d.spec("a", "-sleep", "forever")
	a.Labels["orch.test.role"] = "server"
	b := d.spec("b", "-exit", "7")
	b.Labels["orch.test.role"] = "batch"
	idA, idB := d.start(ctx, a), d.start(ctx, b)
	if exit, err := d.rt.Wait(ctx, idB); err != nil || exit.Code != 7 {
		t.Fatalf("Wait b = %+v, %v; want code 7", exit, err)
	}

	all, err := d.rt.List(ctx, d.labels)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	got := map[string]Container{}
	for _, c := range all {
		got[c.ID] = c
	}
	if len(all) != 2 || got[idA].ID == "" || got[idB].ID == "" {
		t.Fatalf("List(run) = %+v, want a and b", all)
	}
	if c := got[idA]; !c.Running || c.Name != a.Name || c.Labels[LabelTask] != a.Labels[LabelTask] {
		t.Errorf("a = %+v, want running, named %s, with its labels", c, a.Name)
	}
	if c := got[idB]; c.Running || c.ExitCode != 7 || c.Name != b.Name {
		t.Errorf("b = %+v, want exited with code 7, named %s", c, b.Name)
	}

	for _, tc := range []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{labelTestRun: d.run, "orch.test.role": "server"}, []string{idA}},
		{map[string]string{labelTestRun: d.run, "orch.test.role": "batch"}, []string{idB}},
		{map[string]string{labelTestRun: d.run, LabelTask: b.Labels[LabelTask], LabelAttempt: "1"}, []string{idB}},
		{map[string]string{labelTestRun: d.run, "orch.test.role": "nobody"}, nil},
		{map[string]string{labelTestRun: d.run, LabelAttempt: "2"}, nil},
	} {
		list, err := d.rt.List(ctx, tc.labels)
		if err != nil {
			t.Fatalf("List(%v): %v", tc.labels, err)
		}
		var ids []string
		for _, c := range list {
			ids = append(ids, c.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("List(%v) = %v, want %v", tc.labels, ids, tc.want)
		}
	}
}

func TestDockerPortPublished(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	spec := d.spec("web", "-serve", ":8080", "-tcp", ":9000", "-sleep", "forever")
	spec.Ports = []queue.Port{{ContainerPort: 8080}, {ContainerPort: 9000, Protocol: "tcp"}}
	id := d.start(ctx, spec)
	info := d.inspect(ctx, id)
	if _, ok := info.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v, want 8080/tcp", info.Config.ExposedPorts)
	}
	var hostPort string
	for _, port := range []string{"8080/tcp", "9000/tcp"} {
		bindings := info.NetworkSettings.Ports[nat.Port(port)]
		if len(bindings) == 0 {
			t.Fatalf("port %s is not published: %v", port, info.NetworkSettings.Ports)
		}
		for _, b := range bindings {
			if n, err := strconv.Atoi(b.HostPort); err != nil || n <= 0 {
				t.Errorf("port %s published on host port %q, want one Docker chose", port, b.HostPort)
			}
		}
		if port == "8080/tcp" {
			hostPort = bindings[0].HostPort
		}
	}

	// The published port reaches the workload.
	url := "http://" + net.JoinHostPort("127.0.0.1", hostPort) + "/"
	deadline := time.Now().Add(15 * time.Second)
	for {
		body, err := httpGet(ctx, url)
		if err == nil && strings.TrimSpace(body) == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %q, %v; want ok", url, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

func TestDockerStartFailureRemovesContainer(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	// Two containers on the same fixed host port: the second cannot start.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	first := d.spec("first", "-tcp", ":9000", "-sleep", "forever")
	first.Ports = []queue.Port{{ContainerPort: 9000, HostPort: port}}
	d.start(ctx, first)
	second := d.spec("second", "-tcp", ":9000", "-sleep", "forever")
	second.Ports = first.Ports
	id, err := d.rt.Start(ctx, second)
	if err == nil {
		t.Fatalf("second Start on host port %d = %q, want an error", port, id)
	}
	if errors.Is(err, ErrImage) {
		t.Errorf("start failure %q wraps ErrImage", err)
	}
	t.Logf("second start: %v", err)
	list, err := d.rt.List(ctx, map[string]string{labelTestRun: d.run, LabelName: "second"})
	if err != nil || len(list) != 0 {
		t.Errorf("List(second) = %+v, %v; want the failed container removed", list, err)
	}
}

func TestDockerStartIdempotent(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	spec := d.spec("twice", "-sleep", "forever")
	id1 := d.start(ctx, spec)
	id2 := d.start(ctx, spec)
	if id1 != id2 {
		t.Errorf("second Start = %.12s, want the first container %.12s", id2, id1)
	}
	list, err := d.rt.List(ctx, d.labels)
	if err != nil || len(list) != 1 {
		t.Errorf("List = %+v, %v; want one container", list, err)
	}

	// The same name for another attempt is somebody else's container.
	other := d.spec("twice", "-sleep", "forever")
	other.Labels[LabelAttempt] = "2"
	if id, err := d.rt.Start(ctx, other); err == nil {
		t.Errorf("Start of attempt 2 under attempt 1's name = %.12s, want an error", id)
	} else if !cerrdefs.IsConflict(err) {
		t.Errorf("Start of attempt 2 under attempt 1's name: %v, want a conflict", err)
	}
}

func TestDockerPing(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	if err := d.rt.Ping(testContext(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestMemRuntime(t *testing.T) {
	t.Parallel()
	// Not testContext's 90 s: the parallel subtests below start only when
	// the package's other parallel tests leave them a slot, which on a busy
	// machine can take longer than that.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	labels := func(task, attempt string) map[string]string {
		return map[string]string{LabelTask: task, LabelAttempt: attempt, LabelNode: "n1"}
	}

	t.Run("RunForAndExitCode", func(t *testing.T) {
		t.Parallel()
		r := &MemRuntime{RunFor: 20 * time.Millisecond, ExitCode: 4}
		id, err := r.Start(ctx, ContainerSpec{Name: "a", Labels: labels("a", "1")})
		if err != nil {
			t.Fatal(err)
		}
		exit, err := r.Wait(ctx, id)
		if err != nil || exit.Code != 4 {
			t.Fatalf("Wait = %+v, %v; want code 4", exit, err)
		}
		list, _ := r.List(ctx, map[string]string{LabelTask: "a"})
		if len(list) != 1 || list[0].Running || list[0].ExitCode != 4 || list[0].Name != "a" {
			t.Errorf("List = %+v, want a exited with 4", list)
		}
	})

	t.Run("RunsUntilStopped", func(t *testing.T) {
		t.Parallel()
		r := &MemRuntime{StopExitCode: 143}
		id, err := r.Start(ctx, ContainerSpec{Name: "b", Labels: labels("b", "1")})
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		if _, err := r.Wait(short, id); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait on a running container: %v, want deadline exceeded", err)
		}
		if list, _ := r.List(ctx, nil); len(list) != 1 || !list[0].Running {
			t.Errorf("List = %+v, want b running", list)
		}
		if err := r.Stop(ctx, id, time.Second); err != nil {
			t.Fatal(err)
		}
		if exit, err := r.Wait(ctx, id); err != nil || exit.Code != 143 {
			t.Errorf("Wait after Stop = %+v, %v; want 143", exit, err)
		}
		if err := r.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := r.Remove(ctx, id); err != nil {
			t.Errorf("second Remove: %v", err)
		}
		if err := r.Stop(ctx, id, 0); err != nil {
			t.Errorf("Stop after Remove: %v", err)
		}
		if _, err := r.Wait(ctx, id); err == nil {
			t.Errorf("Wait after Remove succeeded")
		}
		if list, _ := r.List(ctx, nil); len(list) != 0 {
			t.Errorf("List after Remove = %+v", list)
		}
	})

	t.Run("Behave", func(t *testing.T) {
		t.Parallel()
		r := &MemRuntime{Behave: func(s ContainerSpec) (time.Duration, int) {
			if s.Image == "crash" {
				return time.Millisecond, 1
			}
			return 0, 0
		}}
		crash, _ := r.Start(ctx, ContainerSpec{Name: "c", Image: "crash"})
		web, _ := r.Start(ctx, ContainerSpec{Name: "w", Image: "web"})
		if exit, err := r.Wait(ctx, crash); err != nil || exit.Code != 1 {
			t.Errorf("Wait crash = %+v, %v; want 1", exit, err)
		}
		if list, _ := r.List(ctx, nil); len(list) != 2 || list[0].ID != crash || list[1].ID != web || !list[1].Running {
			t.Errorf("List = %+v, want crash exited then web running", list)
		}
	})

	t.Run("FailStart", func(t *testing.T) {
		t.Parallel()
		refused := fmt.Errorf("pulling: %w", ErrImage)
		r := &MemRuntime{FailStart: refused}
		if _, err := r.Start(ctx, ContainerSpec{Name: "d"}); !errors.Is(err, ErrImage) {
			t.Errorf("Start = %v, want ErrImage", err)
		}
		if err := r.Ping(ctx); !errors.Is(err, ErrImage) {
			t.Errorf("Ping = %v, want the failure", err)
		}
		r.SetFailStart(nil)
		if _, err := r.Start(ctx, ContainerSpec{Name: "d"}); err != nil {
			t.Errorf("Start after SetFailStart(nil): %v", err)
		}
		if err := r.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})

	t.Run("StartLatency", func(t *testing.T) {
		t.Parallel()
		r := &MemRuntime{StartLatency: 50 * time.Millisecond}
		begin := time.Now()
		if _, err := r.Start(ctx, ContainerSpec{Name: "e"}); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(begin); took < 50*time.Millisecond {
			t.Errorf("Start took %v, want at least the latency", took)
		}
		short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		defer cancel()
		if _, err := r.Start(short, ContainerSpec{Name: "f"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Start with a short context = %v, want deadline exceeded", err)
		}
		if list, _ := r.List(ctx, nil); len(list) != 1 {
			t.Errorf("List = %+v, want only e", list)
		}
	})

	t.Run("Names", func(t *testing.T) {
		t.Parallel()
		r := &MemRuntime{}
		id1, err1 := r.Start(ctx, ContainerSpec{Name: "g", Labels: labels("g", "1")})
		id2, err2 := r.Start(ctx, ContainerSpec{Name: "g", Labels: labels("g", "1")})
		if err1 != nil || err2 != nil || id1 != id2 {
			t.Errorf("Start twice = %s, %v / %s, %v; want the same id", id1, err1, id2, err2)
		}
		if _, err := r.Start(ctx, ContainerSpec{Name: "g", Labels: labels("g", "2")}); err == nil {
			t.Errorf("Start of another attempt under a taken name succeeded")
		}
		if err := r.Remove(ctx, id1); err != nil {
			t.Fatal(err)
		}
		if id3, err := r.Start(ctx, ContainerSpec{Name: "g", Labels: labels("g", "2")}); err != nil || id3 == id1 {
			t.Errorf("Start after Remove = %s, %v; want a new container", id3, err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		r := &MemRuntime{Behave: func(s ContainerSpec) (time.Duration, int) {
			if s.Labels["kind"] == "batch" {
				return time.Millisecond, 0
			}
			return 0, 0
		}}
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kind := "batch"
				if i%2 == 0 {
					kind = "service"
				}
				name := fmt.Sprint("task-", i)
				id, err := r.Start(ctx, ContainerSpec{Name: name, Labels: map[string]string{LabelTask: name, "kind": kind}})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := r.List(ctx, map[string]string{"kind": kind}); err != nil {
					t.Error(err)
				}
				if kind == "service" {
					r.Stop(ctx, id, 0)
				}
				if _, err := r.Wait(ctx, id); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for _, kind := range []string{"batch", "service"} {
			list, _ := r.List(ctx, map[string]string{"kind": kind})
			if len(list) != 32 {
				t.Errorf("List(kind=%s) has %d containers, want 32", kind, len(list))
			}
			for _, c := range list {
				if c.Running {
					t.Errorf("%s still running", c.Name)
				}
			}
		}
	})
}

func TestDockerConfig_PrivilegesOnlyWhenAsked(t *testing.T) {
	_, hc, err := dockerConfig(ContainerSpec{Image: "x"}, "json-file")
	if err != nil || hc.Privileged || hc.NetworkMode.IsHost() {
		t.Fatalf("an ordinary spec: privileged=%v network=%q, %v", hc.Privileged, hc.NetworkMode, err)
	}
	// (This machine's engine may not grant capabilities at all, so the
	// privileged flag is checked on the configuration sent to Docker.)
	_, hc, err = dockerConfig(ContainerSpec{Image: "x", Privileged: true}, "json-file")
	if err != nil || !hc.Privileged {
		t.Fatalf("a privileged spec: privileged=%v, %v", hc.Privileged, err)
	}
	if _, _, err := dockerConfig(ContainerSpec{Image: "x", Network: "overlay"}, "json-file"); err == nil {
		t.Fatal("an unknown network was accepted")
	}
}

func TestDockerHostAndNoNetworkOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	d := newDockerTest(t)
	ctx := testContext(t)
	for _, network := range []string{"host", "none"} {
		spec := d.spec("net-"+network, "-sleep", "forever")
		spec.Network = network
		hc := d.inspect(ctx, d.start(ctx, spec)).HostConfig
		if hc.Privileged || string(hc.NetworkMode) != network {
			t.Errorf("network %s: privileged=%v network=%q", network, hc.Privileged, hc.NetworkMode)
		}
	}
}
