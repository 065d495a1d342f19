package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

func newTaskCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "task", Short: "Create, list, inspect and stop tasks"}
	cmd.AddCommand(newTaskCreateCmd(), newTaskRunCmd(), newTaskListCmd(), newTaskGetCmd(), newTaskDeleteCmd())
	cmd.AddCommand(newTaskLogsCmd())
	return cmd
}

// taskFlags are the flags that describe a task, shared by orch task create
// and orch task run.
type taskFlags struct {
	name, image, cpu, memory, disk, restart string
	strategy, network                       string
	maxRestarts                             int
	env, ports, labels, constraints         []string
	secretVals, secretFiles, volumes        []string
	pidsLimit                               int64
	privileged                              bool
	stopAfterDisconnect                     time.Duration
	health                                  healthFlags
}

func (tf *taskFlags) register(f *pflag.FlagSet) {
	f.StringVar(&tf.image, "image", "", "container image (required)")
	f.StringVar(&tf.name, "name", "", "task name (default task-<id>); one live task per name")
	f.StringVar(&tf.cpu, "cpu", "", "CPU to reserve and limit, in cores (0.5) or millicores (500m)")
	f.StringVar(&tf.memory, "memory", "", "memory to reserve and limit, e.g. 256MiB, 1G")
	f.StringVar(&tf.disk, "disk", "", "disk to reserve, e.g. 1GiB")
	f.StringArrayVar(&tf.env, "env", nil, "environment variable K=V (repeatable)")
	f.StringArrayVar(&tf.secretVals, "secret", nil, "secret K=V, given to the container as an environment variable and never shown again (repeatable)")
	f.StringArrayVar(&tf.secretFiles, "secret-file", nil, "secret K=PATH: the secret's value is the content of the file PATH (repeatable)")
	f.Int64Var(&tf.pidsLimit, "pids-limit", 0, "processes the container may have, below its node's limit (default: the node's)")
	f.StringArrayVar(&tf.ports, "port", nil, "publish a port: HOST:CONTAINER[/udp] or CONTAINER (repeatable)")
	f.StringArrayVar(&tf.labels, "label", nil, "task label k=v (repeatable)")
	f.StringArrayVarP(&tf.volumes, "volume", "v", nil, "mount NAME:/path[:ro], a named volume made on first use and kept on its node (later tasks naming it go there), or /host/path:/path[:ro] (admin token, agent with --allow-host-mounts) (repeatable)")
	f.StringVar(&tf.restart, "restart-policy", "never", "never, on-failure or always")
	f.StringVar(&tf.strategy, "strategy", "", "placement strategy for this task: "+strings.Join(queue.Strategies, ", ")+" (default: the coordinator's)")
	f.StringArrayVar(&tf.constraints, "constraint", nil, "only nodes whose labels match: key=value or key!=value (repeatable)")
	f.IntVar(&tf.maxRestarts, "max-restarts", 0, "restarts allowed by the restart policy (0: unlimited)")
	f.BoolVar(&tf.privileged, "privileged", false, "run the container privileged (needs an admin token and an agent started with --allow-privileged)")
	f.StringVar(&tf.network, "network", "", "bridge (default), host or none; host needs what --privileged needs")
	f.DurationVar(&tf.stopAfterDisconnect, "stop-after-disconnect", 0, "have the agent stop the task once its node has been cut off from the database this long, so it never runs beside its replacement (e.g. 3s; default: never)")
	tf.health.register(f)
}

// request builds the task the flags and the arguments after -- describe,
// and checks it as the API would, with the same words.
func (tf *taskFlags) request(cmd *cobra.Command, args []string) (coordinator.TaskRequest, error) {
	req := coordinator.TaskRequest{Name: tf.name, Image: tf.image, Command: args,
		RestartPolicy: queue.RestartPolicy(tf.restart), MaxRestarts: tf.maxRestarts, Strategy: tf.strategy,
		Privileged: tf.privileged, Network: tf.network, PidsLimit: tf.pidsLimit}
	if cmd.Flags().Changed("cpu") {
		q := coordinator.Quantity(tf.cpu)
		req.CPU = &q
	}
	if cmd.Flags().Changed("memory") {
		q := coordinator.Quantity(tf.memory)
		req.Memory = &q
	}
	if cmd.Flags().Changed("disk") {
		q := coordinator.Quantity(tf.disk)
		req.Disk = &q
	}
	var err error
	if req.Env, err = keyValues("env", tf.env); err != nil {
		return req, err
	}
	if req.Labels, err = keyValues("label", tf.labels); err != nil {
		return req, err
	}
	if req.Secrets, err = secretValues(tf.secretVals, tf.secretFiles); err != nil {
		return req, err
	}
	for _, c := range tf.constraints {
		k, err := queue.ParseConstraint(c)
		if err != nil {
			return req, err
		}
		req.Constraints = append(req.Constraints, k)
	}
	for _, v := range tf.volumes {
		m, err := queue.ParseMount(v)
		if err != nil {
			return req, err
		}
		req.Volumes = append(req.Volumes, m)
	}
	for _, p := range tf.ports {
		port, err := parsePortFlag(p)
		if err != nil {
			return req, err
		}
		req.Ports = append(req.Ports, port)
	}
	if req.HealthCheck, err = tf.health.check(cmd); err != nil {
		return req, err
	}
	if tf.stopAfterDisconnect != 0 {
		req.StopAfterDisconnect = tf.stopAfterDisconnect.String()
	}
	return req, checkRequest(req)
}

// What orch task create --wait waits for.
const (
	waitRunning = "running"
	waitExit    = "exit"
)

func newTaskCreateCmd() *cobra.Command {
	var (
		tf      taskFlags
		wait    string
		timeout time.Duration
		count   int
		file    string
	)
	taskFlagSet := pflag.NewFlagSet("task", pflag.ContinueOnError)
	cmd := &cobra.Command{
		Use:   "create --image IMAGE [flags] [-- COMMAND [ARGS...]] | create -f FILE",
		Short: "Submit a task; it runs as a container on a node with room for it",
		Long: `Submit a task; it runs as a container on a node with room for it.

--wait (or --wait=running) waits until the task is running, or has ended, or cannot
start; it exits 0 once the task runs, even if it fails a moment later. --wait=exit
waits until the task has ended (completed, failed or stopped) and exits with the
task's exit code (1 if it failed without one). orch task run also streams the logs.

--count N submits N such tasks at once; a --name NAME becomes NAME-1 ... NAME-N, as
Docker Compose names replicas (a job's tasks are JOB.1 ...), and without --name each
gets its own task-<id>. -f FILE submits the tasks listed in FILE ("-": standard
input), a JSON array or a YAML list of objects with the fields of POST /tasks (go doc
./coordinator); every task in it is checked before any is sent. Both send up to 1000
tasks per request, each request stored in one transaction, all or none, with the
progress on stderr when there are more; an error names the task by its index
("[3].image"). Give tasks an "id" in the file to make sending it again safe: the
tasks that exist with the same spec are answered, not made twice.`,
		Example: `  orch task create --image nginx:1.27 --cpu 0.5 --memory 256MiB --port 8080:80
  orch task create --image alpine:3.20 --restart-policy on-failure --max-restarts 3 -- sh -c 'exit 1'
  orch task create --image nginx:1.27 --strategy spread --constraint zone=eu --constraint gpu!=none
  orch task create --count 100 --name shard --image workload:test -- -sleep 10s
  orch task create -f tasks.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" || count != 1 {
				if wait != "" && wait != "false" {
					return queue.Invalid("wait", "--wait follows one task", "leave out --wait with --count or -f, and watch with orch task list")
				}
				return createMany(cmd, &tf, taskFlagSet, args, count, file)
			}
			switch wait {
			case "true":
				wait = waitRunning
			case "false":
				wait = ""
			}
			if wait != "" && wait != waitRunning && wait != waitExit {
				return queue.Invalid("wait", fmt.Sprintf("--wait=%s: wait for what?", wait), "use --wait (until running) or --wait=exit (until it ends)")
			}
			client, cc, created, err := tf.submit(cmd, args)
			if err != nil {
				return err
			}
			t := created.Task
			for _, w := range created.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "orch: warning: task %s: %s\n", t.Name, w)
			}
			if wait != "" && len(created.Warnings) > 0 {
				// Waiting would be waiting for a node that is not there.
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", t.ID, t.Name, t.State)
				return fmt.Errorf("not waiting for task %s: no node could ever hold it (orch task delete %s drops it)", t.Name, t.Name)
			}
			if wait != "" {
				until := func(t queue.Task) bool { return t.State == queue.Running || t.State.Terminal() }
				if wait == waitExit {
					until = func(t queue.Task) bool { return t.State.Terminal() }
				}
				t, err = waitFor(cmd.Context(), client, cmd.ErrOrStderr(), t.ID.String(), timeout, until)
				if err != nil {
					return err
				}
			}
			if cc.Output == "json" {
				if err := printJSON(cmd.OutOrStdout(), t); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", t.ID, t.Name, t.State)
			}
			switch {
			case wait == waitExit:
				return taskExit(t)
			case wait != "" && t.State == queue.Failed:
				return fmt.Errorf("task %s failed: %s", t.ID, t.Error)
			}
			return nil
		},
	}
	f := cmd.Flags()
	tf.register(taskFlagSet)
	f.AddFlagSet(taskFlagSet)
	f.IntVar(&count, "count", 1, "submit this many tasks like the one the flags describe (names NAME-1 ... NAME-N)")
	f.StringVarP(&file, "file", "f", "", `submit the tasks listed in FILE, a JSON array or YAML list ("-": standard input)`)
	f.StringVar(&wait, "wait", "", "wait until the task runs (--wait) or ends (--wait=exit), showing its status")
	f.Lookup("wait").NoOptDefVal = waitRunning
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

// createMany is orch task create --count N or -f FILE: tasks sent in
// batches (submitTasks), printed as a single create prints one.
func createMany(cmd *cobra.Command, tf *taskFlags, taskFlagSet *pflag.FlagSet, args []string, count int, file string) error {
	var reqs []coordinator.TaskRequest
	switch {
	case file != "":
		given := ""
		taskFlagSet.VisitAll(func(fl *pflag.Flag) {
			if given == "" && cmd.Flags().Changed(fl.Name) {
				given = "--" + fl.Name
			}
		})
		if given == "" && len(args) > 0 {
			given = "a command"
		}
		if given == "" && cmd.Flags().Changed("count") {
			given = "--count"
		}
		if given != "" {
			return queue.Invalid("file", fmt.Sprintf("-f takes the tasks from the file, not from %s", given), "write everything about the tasks in the file")
		}
		var err error
		if reqs, err = readTaskFile(cmd, file); err != nil {
			return err
		}
	case count < 1:
		return queue.Invalid("count", fmt.Sprintf("--count %d: submit how many?", count), "give 1 or more")
	default:
		req, err := tf.request(cmd, args)
		if err != nil {
			return err
		}
		reqs = countedRequests(req, count)
	}
	client, cc, err := clientFor(cmd)
	if err != nil {
		return err
	}
	created, err := submitTasks(cmd, client, reqs)
	if err != nil {
		return err
	}
	tasks := make([]queue.Task, len(created))
	for i, c := range created {
		tasks[i] = c.Task
		for _, w := range c.Warnings {
			fmt.Fprintf(cmd.ErrOrStderr(), "orch: warning: task %s: %s\n", c.Name, w)
		}
	}
	if cc.Output == "json" {
		return printJSON(cmd.OutOrStdout(), tasks)
	}
	w := bufio.NewWriter(cmd.OutOrStdout())
	for _, t := range tasks {
		fmt.Fprintf(w, "%s\t%s\t%s\n", t.ID, t.Name, t.State)
	}
	return w.Flush()
}

// keyValues parses repeated K=V flags.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, queue.Invalid(flag, fmt.Sprintf("%q is not KEY=VALUE", kv), fmt.Sprintf("write --%s KEY=VALUE", flag))
		}
		out[k] = v
	}
	return out, nil
}

// secretValues reads --secret K=V and --secret-file K=PATH. Its errors
// never quote what was given: it may be the secret.
func secretValues(vals, files []string) (map[string]string, error) {
	if len(vals)+len(files) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(vals)+len(files))
	for i, kv := range vals {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, queue.Invalid("secret", fmt.Sprintf("--secret number %d is not KEY=VALUE (its text is not shown)", i+1), "write --secret KEY=VALUE, or --secret-file KEY=PATH")
		}
		out[k] = v
	}
	for _, kp := range files {
		k, path, ok := strings.Cut(kp, "=")
		if !ok || k == "" || path == "" {
			return nil, queue.Invalid("secret-file", fmt.Sprintf("%q is not KEY=PATH", kp), "write --secret-file KEY=PATH")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, queue.Invalid("secret-file", fmt.Sprintf("secret %s: %v", k, err), "give a readable file")
		}
		if _, dup := out[k]; dup {
			return nil, queue.Invalid("secret", fmt.Sprintf("secret %s is given twice", k), "give each secret once")
		}
		out[k] = string(b)
	}
	return out, nil
}

// submit sends the task the flags and args describe, with a client made
// from the command's configuration, which it returns for what follows.
func (tf *taskFlags) submit(cmd *cobra.Command, args []string) (*coordinator.Client, config.Client, coordinator.CreatedTask, error) {
	req, err := tf.request(cmd, args)
	if err != nil {
		return nil, config.Client{}, coordinator.CreatedTask{}, err
	}
	client, cc, err := clientFor(cmd)
	if err != nil {
		return nil, cc, coordinator.CreatedTask{}, err
	}
	created, err := client.SubmitTask(cmd.Context(), req)
	return client, cc, created, err
}

// parsePortFlag reads HOST:CONTAINER[/PROTO] or CONTAINER[/PROTO].
func parsePortFlag(s string) (queue.Port, error) {
	bad := queue.Invalid("port", fmt.Sprintf("%q is not a port mapping", s), "write --port 8080:80, --port 80 or --port 5353:53/udp")
	spec, proto, _ := strings.Cut(s, "/")
	var p queue.Port
	p.Protocol = proto
	host, cont, mapped := strings.Cut(spec, ":")
	if !mapped {
		cont, host = host, ""
	}
	var err error
	if p.ContainerPort, err = strconv.Atoi(cont); err != nil {
		return p, bad
	}
	if host != "" {
		if p.HostPort, err = strconv.Atoi(host); err != nil {
			return p, bad
		}
	}
	return p, nil
}

func newTaskListCmd() *cobra.Command {
	var states []string
	var node string
	var limit int
	cmd := readingCmd(command("list", "List tasks, newest first", cobra.NoArgs),
		func(cmd *cobra.Command, client *coordinator.Client, _ []string) ([]queue.Task, error) {
			return client.ListTasks(cmd.Context(), coordinator.TaskQuery{States: states, Node: node, Limit: limit})
		}, func(w io.Writer, _ []string, tasks []queue.Task) error {
			tb := newTable(w, "ID", "NAME", "IMAGE", "STATE", "NODE", "ATTEMPT", "EXIT", "PORTS", "AGE")
			for _, t := range tasks {
				exit := "-"
				if t.ExitCode != nil {
					exit = strconv.Itoa(*t.ExitCode)
				}
				tb.row(t.ID.String(), t.Name, t.Image, string(t.State), orDash(t.NodeName), strconv.Itoa(t.Attempt), exit,
					orDash(portList(t)), age(t.CreatedAt))
			}
			return tb.flush()
		})
	cmd.Flags().StringSliceVar(&states, "state", nil, "only tasks in these states (comma-separated)")
	cmd.Flags().StringVar(&node, "node", "", "only tasks on this node")
	cmd.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("at most this many (default %d, at most %d)", coordinator.DefaultListLimit, coordinator.MaxListLimit))
	return cmd
}

func newTaskGetCmd() *cobra.Command {
	return readingCmd(command("get TASK", "Show a task and its history", taskArg),
		byName((*coordinator.Client).GetTask), func(w io.Writer, _ []string, t coordinator.TaskDetail) error { return printTask(w, t) })
}

// taskArg is the argument of the commands about one task.
var taskArg = exactArgs(1, "give the task's name, its id or a unique part of the id (as orch task list prints them)")

func printTask(w io.Writer, t coordinator.TaskDetail) error {
	exit := "-"
	if t.ExitCode != nil {
		exit = strconv.Itoa(*t.ExitCode)
	}
	tb := newTable(w, "FIELD", "VALUE")
	for _, kv := range [][2]string{
		{"id", t.ID.String()}, {"name", t.Name}, {"image", t.Image},
		{"command", orDash(strings.Join(t.Command, " "))},
		{"state", string(t.State)}, {"desired", string(t.DesiredState)},
		{"node", orDash(t.NodeName)}, {"attempt", strconv.Itoa(t.Attempt)}, {"restarts", strconv.Itoa(t.Restarts)},
		{"cpu", queue.FormatCPU(t.Resources.CPUMillis)}, {"memory", queue.FormatBytes(t.Resources.MemoryBytes)},
		{"disk", queue.FormatBytes(t.Resources.DiskBytes)},
		{"restart policy", restartText(t.Task)}, {"ports", orDash(portList(t.Task))},
		{"strategy", orDash(t.Strategy)}, {"constraints", orDash(constraintList(t.Constraints))},
		{"container", orDash(t.ContainerID)}, {"exit code", exit}, {"error", orDash(t.Error)},
		{"waiting because", orDash(t.Reason)}, {"created", t.CreatedAt.Format(time.RFC3339)},
		{"usage", taskUsageText(t.Usage)},
	} {
		tb.row(kv[0], kv[1])
	}
	if t.State == queue.Pending && t.NotBefore != nil {
		tb.row("next attempt", t.NotBefore.Format(time.RFC3339Nano))
	}
	if t.Privileged {
		tb.row("privileged", "yes")
	}
	if t.Network != "" {
		tb.row("network", t.Network)
	}
	for _, m := range t.Volumes {
		tb.row("volume", m.String())
	}
	if t.StopAfterDisconnect != 0 {
		tb.row("stop after disconnect", t.StopAfterDisconnect.String())
	}
	for _, kv := range healthLines(t.Task) {
		tb.row(kv[0], kv[1])
	}
	if err := tb.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nEVENTS")
	ev := newTable(w, "TIME", "FROM", "TO", "ATTEMPT", "EXIT", "REASON")
	for _, e := range t.Events {
		exit := "-"
		if e.ExitCode != nil {
			exit = strconv.Itoa(*e.ExitCode)
		}
		ev.row(e.At.Format("15:04:05.000"), orDash(string(e.From)), string(e.To), strconv.Itoa(e.Attempt), exit, orDash(e.Reason))
	}
	return ev.flush()
}

// taskUsageText is printTask's line about the task's measured usage.
func taskUsageText(u *queue.TaskUsage) string {
	if u == nil {
		return "-"
	}
	lim := "no limit"
	if u.MemoryLimitBytes > 0 {
		lim = "of " + queue.FormatBytes(u.MemoryLimitBytes)
	}
	return fmt.Sprintf("cpu %.1f%% of a core, memory %s %s (%s ago)", u.CPUPercent, queue.FormatBytes(u.MemoryUsedBytes), lim, age(u.At))
}

func newTaskDeleteCmd() *cobra.Command {
	var wait, purge bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "delete TASK",
		Aliases: []string{"stop", "rm"},
		Short:   "Stop a task: its container is stopped and removed, and the task ends stopped",
		Long: `Stop a task: its container is stopped and removed, and the task ends stopped.
With --purge, a finished task is deleted at once with everything recorded about it
(events, logs, stats), instead of after the coordinators' --retention.`,
		Args: taskArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			if purge {
				if err := client.PurgeTask(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\tpurged\n", args[0])
				return nil
			}
			t, err := client.DeleteTask(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if wait {
				t, err = waitFor(cmd.Context(), client, cmd.ErrOrStderr(), args[0], timeout, func(t queue.Task) bool { return t.State.Terminal() })
				if err != nil {
					return err
				}
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", t.ID, t.Name, t.State)
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the task has stopped, showing its status")
	cmd.Flags().BoolVar(&purge, "purge", false, "delete a finished task's records at once")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}

// waitFor polls a task until done says so, keeping one status line up to
// date on a terminal (plain lines otherwise, one per change).
func waitFor(ctx context.Context, c *coordinator.Client, w io.Writer, id string, timeout time.Duration, done func(queue.Task) bool) (queue.Task, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tty := isTerminal(w)
	start := time.Now()
	last := ""
	for {
		d, err := c.GetTask(ctx, id)
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return queue.Task{}, fmt.Errorf("gave up waiting for task %s after %s", id, timeout)
			}
			return queue.Task{}, err
		}
		t := d.Task
		line := fmt.Sprintf("task %s: %s", t.Name, t.State)
		if t.NodeName != "" {
			line += " on " + t.NodeName
		}
		if t.Reason != "" {
			line += " (" + t.Reason + ")"
		}
		if tty {
			fmt.Fprintf(w, "\r\033[K%s  %.1fs", line, time.Since(start).Seconds())
		} else if line != last {
			fmt.Fprintln(w, line)
		}
		last = line
		if done(t) {
			if tty {
				fmt.Fprintln(w)
			}
			return t, nil
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(w)
			}
			return t, fmt.Errorf("gave up waiting for task %s after %s: it is %s", id, timeout, t.State)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// isTerminal reports whether v (a reader or writer) is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// exactArgs is cobra.ExactArgs with a hint, as a usage error.
func exactArgs(n int, hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{err: fmt.Errorf("%s takes %d argument(s), got %d: %s", cmd.CommandPath(), n, len(args), hint)}
		}
		return nil
	}
}

// constraintList renders constraints as a user writes them: "zone=eu,gpu!=none".
func constraintList(cs []queue.Constraint) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return strings.Join(out, ",")
}

// healthFlags are `orch task create`'s health check flags.
type healthFlags struct {
	http, tcp         string
	interval, timeout time.Duration
	startPeriod       time.Duration
	failures          int
}

func (h *healthFlags) register(f *pflag.FlagSet) {
	f.StringVar(&h.http, "health-http", "", "health check: HTTP GET of PORT/PATH in the container, e.g. 8080/healthz (healthy on 2xx/3xx)")
	f.StringVar(&h.tcp, "health-tcp", "", "health check: TCP connect to PORT in the container")
	f.DurationVar(&h.interval, "health-interval", queue.DefaultHealthInterval, "time between health probes")
	f.DurationVar(&h.timeout, "health-timeout", queue.DefaultHealthTimeout, "time one probe may take")
	f.IntVar(&h.failures, "health-failures", queue.DefaultHealthThreshold, "failed probes in a row that make the task unhealthy (then it is restarted per its restart policy)")
	f.DurationVar(&h.startPeriod, "health-start-period", 0, "time after the start during which failed probes do not count")
}

// check builds the health check the flags describe, or nil when there is none.
func (h *healthFlags) check(cmd *cobra.Command) (*queue.HealthCheck, error) {
	changed := func(name string) bool { return cmd.Flags().Changed(name) }
	if h.http == "" && h.tcp == "" {
		for _, n := range []string{"health-interval", "health-timeout", "health-failures", "health-start-period"} {
			if changed(n) {
				return nil, queue.Invalid(n, "--"+n+" needs a health check", "add --health-http PORT/PATH or --health-tcp PORT")
			}
		}
		return nil, nil
	}
	if h.http != "" && h.tcp != "" {
		return nil, queue.Invalid("health-http", "give --health-http or --health-tcp, not both", "one check per task")
	}
	hc := &queue.HealthCheck{Interval: queue.Duration(h.interval), Timeout: queue.Duration(h.timeout),
		FailureThreshold: h.failures, StartPeriod: queue.Duration(h.startPeriod)}
	if !changed("health-timeout") && h.timeout > h.interval {
		hc.Timeout = hc.Interval
	}
	var err error
	if h.tcp != "" {
		hc.Type = queue.HealthTCP
		if hc.Port, err = strconv.Atoi(strings.TrimPrefix(h.tcp, ":")); err != nil {
			return nil, queue.Invalid("health-tcp", fmt.Sprintf("%q is not a port", h.tcp), "write --health-tcp 9000")
		}
		return hc, nil
	}
	hc.Type = queue.HealthHTTP
	port, path, _ := strings.Cut(strings.TrimPrefix(h.http, ":"), "/")
	if hc.Port, err = strconv.Atoi(port); err != nil {
		return nil, queue.Invalid("health-http", fmt.Sprintf("%q is not PORT/PATH", h.http), "write --health-http 8080/healthz")
	}
	hc.Path = "/" + path
	return hc, nil
}

// healthLines renders a task's health check and health for `orch task get`.
func healthLines(t queue.Task) [][2]string {
	hc := t.HealthCheck
	if hc == nil {
		return [][2]string{{"health check", "-"}}
	}
	what := fmt.Sprintf("tcp :%d", hc.Port)
	if hc.Type == queue.HealthHTTP {
		what = fmt.Sprintf("http :%d%s", hc.Port, hc.Path)
	}
	what += fmt.Sprintf(" every %s (timeout %s, %d failures", hc.Interval, hc.Timeout, hc.FailureThreshold)
	if hc.StartPeriod > 0 {
		what += fmt.Sprintf(", start period %s", hc.StartPeriod)
	}
	what += ")"
	health := orDash(string(t.Health))
	if t.HealthDetail != "" && t.Health != queue.HealthNone {
		health += " (" + t.HealthDetail + ")"
	}
	if t.HealthAt != nil && t.Health != queue.HealthNone {
		health += " since " + t.HealthAt.Format(time.RFC3339)
	}
	return [][2]string{{"health check", what}, {"health", health}}
}
