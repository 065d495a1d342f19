package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// orch task run is docker run for a cluster: the task's output as it comes,
// and its exit code as orch's. Tasks are found by name or by a part of
// their id, as the status page and orch task list print them.
func TestE2E_TaskRunAndTaskNames(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 1})

	t.Run("task run exits with the task's exit code and prints its output", func(t *testing.T) {
		stdout, stderr, code := orchSplit(t, c, "task", "run", "--image", c.image, "--name", "say", "--", "-logs", "3", "-exit", "0")
		if code != 0 || stdout != "line 1\nline 2\nline 3\n" {
			t.Fatalf("orch task run -- -logs 3 -exit 0: exit %d, stdout %q (stderr %q), want 0 and the three lines", code, stdout, stderr)
		}
		stdout, stderr, code = orchSplit(t, c, "task", "run", "--image", c.image, "--", "-logs", "1", "-exit", "3")
		if code != 3 || stdout != "line 1\n" || !strings.Contains(stderr, "exited with code 3") {
			t.Fatalf("orch task run -- -exit 3: exit %d, stdout %q, stderr %q; want 3", code, stdout, stderr)
		}
	})

	t.Run("task run of a task that cannot start says why", func(t *testing.T) {
		_, stderr, code := orchSplit(t, c, "task", "run", "--image", "orch-no-such-image:1", "--", "-exit", "0")
		if code != ExitCouldNotStart || !strings.Contains(stderr, "could not start") {
			t.Fatalf("orch task run of a missing image: exit %d, stderr %q; want %d and the reason", code, stderr, ExitCouldNotStart)
		}
	})

	t.Run("create --wait=exit waits for the end", func(t *testing.T) {
		out, code := c.orch("task", "create", "--image", c.image, "--wait=exit", "--", "-sleep", "300ms", "-exit", "4")
		if code != 4 || !strings.Contains(out, "failed") {
			t.Fatalf("create --wait=exit of a task that exits 4 after 300ms: exit %d\n%s", code, out)
		}
	})

	web := createTask(t, c, "--name", "web", "--port", "8080", "--", "-logs", "2", "-serve", ":8080", "-sleep", "forever")
	c.waitState(web.ID.String(), 60*time.Second, running)

	t.Run("a task is found by name, id start or id end", func(t *testing.T) {
		full := web.ID.String()
		for _, ref := range []string{"web", full[:13], strings.ReplaceAll(full, "-", "")[:16], queue.ShortID(web.ID)} {
			if d := c.task(ref); d.ID != web.ID {
				t.Errorf("orch task get %s → %s, want %s", ref, d.ID, web.ID)
			}
		}
		out, code := c.orch("task", "get", "web")
		if code != 0 || !strings.Contains(out, full) || !strings.Contains(out, "running") {
			t.Errorf("orch task get web: exit %d\n%s", code, out)
		}
		c.eventually(30*time.Second, "the logs of web", func() bool {
			out, code := c.orch("task", "logs", "web")
			return code == 0 && out == "line 1\nline 2\n"
		})
	})

	t.Run("task get and list show the ports as published, and the restart policy as Nomad does", func(t *testing.T) {
		c.eventually(30*time.Second, "the host port of web", func() bool {
			return len(c.task("web").HostPorts) == 1
		})
		host := c.task("web").HostPorts[0].HostPort
		published := fmt.Sprintf("%d->8080/tcp", host)
		out, code := c.orch("task", "get", "web")
		if code != 0 || !regexp.MustCompile(`ports +`+published).MatchString(out) || !regexp.MustCompile(`restart policy +never`).MatchString(out) {
			t.Errorf("orch task get web: exit %d, want ports %s and restart policy never\n%s", code, published, out)
		}
		out, code = c.orch("task", "list")
		if code != 0 || !strings.Contains(out, "PORTS") || !strings.Contains(out, published) {
			t.Errorf("orch task list: exit %d, want a PORTS column with %s\n%s", code, published, out)
		}
		tk := createTask(t, c, "--name", "retrier", "--restart-policy", "on-failure", "--", "-sleep", "forever")
		out, _ = c.orch("task", "get", tk.ID.String())
		if !regexp.MustCompile(`restart policy +on-failure, unlimited`).MatchString(out) {
			t.Errorf("orch task get of --restart-policy on-failure, want on-failure, unlimited:\n%s", out)
		}
		c.orch("task", "delete", "retrier")
	})

	t.Run("a task no node could ever hold is accepted with a warning, and --wait says so at once", func(t *testing.T) {
		start := time.Now()
		out, code := c.orch("task", "create", "--image", c.image, "--name", "huge", "--memory", "100GiB", "--wait")
		if code != 1 || !strings.Contains(out, "could ever hold") || !strings.Contains(out, "100GiB of memory") || time.Since(start) > 20*time.Second {
			t.Fatalf("create --wait of 100GiB on 4GiB nodes: exit %d after %s\n%s", code, time.Since(start), out)
		}
		if d := c.task("huge"); d.State != queue.Pending {
			t.Fatalf("huge is %s, want accepted and pending", d.State)
		}
		c.orch("task", "delete", "huge")
	})

	t.Run("a second live task of a name is refused, naming the first", func(t *testing.T) {
		out, code := c.orch("task", "create", "--image", c.image, "--name", "web")
		if code != 1 || !strings.Contains(out, web.ID.String()) || !strings.Contains(out, "running") {
			t.Fatalf("a second web: exit %d\n%s", code, out)
		}
	})

	t.Run("an ambiguous id start lists the tasks it could mean", func(t *testing.T) {
		out, code := c.orch("task", "get", web.ID.String()[:4])
		if code != 2 || !strings.Contains(out, "could mean") || !strings.Contains(out, web.ID.String()+" web (running)") {
			t.Fatalf("orch task get %s: exit %d\n%s", web.ID.String()[:4], code, out)
		}
	})

	t.Run("task run --rm: Ctrl-C stops the task and deletes it", func(t *testing.T) {
		cmd := exec.Command(orchBin, "task", "run", "--rm", "--image", c.image, "--name", "interrupted", "--", "-logs", "1", "-sleep", "forever")
		cmd.Env = c.env()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill() }()
		var tk queue.Task
		c.eventually(60*time.Second, "task interrupted to run", func() bool {
			ts, err := c.store.ListTasks(context.Background(), postgres.TaskFilter{States: []queue.State{queue.Running}})
			for _, x := range ts {
				if x.Name == "interrupted" {
					tk = x
				}
			}
			return err == nil && tk.Name != ""
		})
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitInterrupted {
			t.Fatalf("orch task run --rm after Ctrl-C: %v, want exit %d\n%s", err, ExitInterrupted, out.String())
		}
		if _, err := c.store.GetTask(context.Background(), tk.ID); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("the task after Ctrl-C of run --rm: %v, want it deleted\n%s", err, out.String())
		}
	})

	t.Run("task run: Ctrl-C away from a terminal leaves the task running and says how to stop it", func(t *testing.T) {
		cmd, out := c.startOrch(t, "task", "run", "--image", c.image, "--name", "left", "--", "-logs", "1", "-sleep", "forever")
		defer func() { _ = cmd.Process.Kill() }()
		c.eventually(60*time.Second, "the output of task left", func() bool { return strings.Contains(out(), "line 1") })
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		text := out()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitInterrupted || !strings.Contains(text, "keeps running") {
			t.Fatalf("orch task run after Ctrl-C: %v, want exit %d and a word on the task\n%s", err, ExitInterrupted, text)
		}
		if d := c.task("left"); d.State != queue.Running {
			t.Fatalf("task left is %s after Ctrl-C without --rm, want running", d.State)
		}
		c.orch("task", "delete", "left")
	})

	t.Run("task create retried across a coordinator restart: one task, and success", func(t *testing.T) {
		c.stop("coordinator-1", false)
		cmd, out := c.startOrch(t, "task", "create", "--image", c.image, "--name", "patient", "--", "-sleep", "forever")
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		c.eventually(30*time.Second, "the CLI to retry", func() bool { return strings.Contains(out(), "trying again") })
		c.start("coordinator-1", "coordinator", "--database-url", c.db, "--listen", strings.TrimPrefix(c.addrs[0], "http://"),
			"--no-migrate", "--pass-interval", "300ms", "--node-down-timeout", "5s")
		select {
		case err := <-done:
			if err != nil || !strings.Contains(out(), "patient\tpending") && !strings.Contains(out(), "patient\tscheduled") {
				t.Fatalf("task create across a restart: %v\n%s", err, out())
			}
		case <-time.After(90 * time.Second):
			t.Fatal("task create did not end once the coordinator was back")
		}
		ts, err := c.store.ListTasks(context.Background(), postgres.TaskFilter{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, x := range ts {
			if x.Name == "patient" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d tasks named patient, want 1", n)
		}
	})
}
