package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

func newJobCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "Run services, batch, system and periodic jobs: groups of tasks kept as their spec says"}
	cmd.AddCommand(newJobRunCmd(), newJobPlanCmd(), newJobListCmd(), newJobStatusCmd(), newJobHistoryCmd(),
		newJobRevertCmd(), newJobScaleCmd(), newJobPromoteCmd(), newJobStopCmd(), newJobRestartCmd(),
		newJobEndpointsCmd(), newJobDeploymentsCmd())
	return cmd
}

// readJobSpec reads and validates a spec file ("-": standard input). Its
// errors name the field by its path, and exit with 2.
func readJobSpec(cmd *cobra.Command, path string) (queue.JobSpec, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), queue.MaxJobBytes+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return queue.JobSpec{}, usageError{err: fmt.Errorf("reading job spec: %w", err)}
	}
	spec, err := queue.ParseJobSpec(data)
	if err != nil {
		return queue.JobSpec{}, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

func newJobRunCmd() *cobra.Command {
	return followingCmd(&cobra.Command{
		Use:   "run FILE",
		Short: "Run a job from a YAML or JSON spec (- reads standard input); a changed spec is a new version",
		Long: `Run a job from its spec. A new job starts at version 1; a changed spec becomes
a new version, which a service rolls out as a deployment; an unchanged spec
changes nothing. Without --detach the command follows the deployment (a batch
job until it ends) with a live progress line and exits non-zero if it fails.
The spec, with an example of each type, is documented in 'go doc github.com/orchd/orch/queue'.`,
		Example: `  orch job run web.yaml
  orch job run --detach nightly.yaml
  orch -o json job run web.yaml`,
		Args: cobra.ExactArgs(1),
	}, "return once the spec is accepted, without following the deployment",
		func(cmd *cobra.Command, client *coordinator.Client, args []string) (coordinator.JobRunResult, error) {
			spec, err := readJobSpec(cmd, args[0])
			if err != nil {
				return coordinator.JobRunResult{}, err
			}
			return client.RunJob(cmd.Context(), spec)
		})
}

// jobChange is what a command that changes a job sends: the answer is the
// job as the change left it.
type jobChange func(cmd *cobra.Command, client *coordinator.Client, args []string) (coordinator.JobRunResult, error)

// followingCmd completes c, a command that changes a job, so that it makes
// the change and then follows the deployment (see followJob), with the
// --detach and --timeout flags.
func followingCmd(c *cobra.Command, detachUsage string, change jobChange) *cobra.Command {
	var detach bool
	var timeout time.Duration
	clientCmd(c, func(cmd *cobra.Command, client *coordinator.Client, cc config.Client, args []string) error {
		res, err := change(cmd, client, args)
		if err != nil {
			return err
		}
		return followJob(cmd, client, cc.Output, res, detach, timeout)
	})
	c.Flags().BoolVar(&detach, "detach", false, detachUsage)
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "how long to follow the deployment")
	return c
}

// detachAtOnce is the --detach of the commands that change a running job.
const detachAtOnce = "return at once, without following the deployment"

func followJob(cmd *cobra.Command, client *coordinator.Client, output string, res coordinator.JobRunResult, detach bool, timeout time.Duration) error {
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	j := res.Job
	if output != "json" {
		switch {
		case res.Created:
			fmt.Fprintf(out, "job %s: created at version %d\n", j.Name, j.Version)
		case res.NewVersion:
			fmt.Fprintf(out, "job %s: version %d\n", j.Name, j.Version)
		case res.Resumed:
			fmt.Fprintf(out, "job %s: resumed at version %d\n", j.Name, j.Version)
		default:
			fmt.Fprintf(out, "job %s: unchanged at version %d\n", j.Name, j.Version)
		}
	}
	if detach || j.Type == queue.JobPeriodic {
		if output == "json" {
			return printJSON(out, res)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	st, err := watchJob(ctx, client, errw, j.Name, j.Version)
	if output == "json" {
		if perr := printJSON(out, st); perr != nil {
			return perr
		}
	} else if err == nil {
		fmt.Fprintln(out, jobLine(st))
	}
	return err
}

// watchJob polls a job until the deployment of version (or, for a batch
// job, the job) ends, showing its progress on w.
func watchJob(ctx context.Context, client *coordinator.Client, w io.Writer, name string, version int) (coordinator.JobStatus, error) {
	tty := isTerminal(w)
	start := time.Now()
	last := ""
	for {
		st, err := client.JobStatus(ctx, name)
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return st, fmt.Errorf("gave up following job %s: %w", name, ctx.Err())
			}
			return st, err
		}
		line, done, failed := progress(st, version)
		if done && st.Version != version && st.Type == queue.JobService {
			failed = movedOn(ctx, client, st, version)
		}
		if tty {
			fmt.Fprintf(w, "\r\033[K%s  %.0fs", printable(line), time.Since(start).Seconds())
		} else if line != last {
			fmt.Fprintln(w, printable(line))
		}
		last = line
		if done {
			if tty {
				fmt.Fprintln(w)
			}
			if failed != "" {
				return st, errors.New(failed)
			}
			return st, nil
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(w)
			}
			return st, fmt.Errorf("gave up following job %s: %s", name, line)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// progress is the progress line of a job being followed, whether it is
// done, and why it failed.
func progress(st coordinator.JobStatus, version int) (line string, done bool, failed string) {
	j := st.Job
	run := st.Counts[queue.Running]
	switch j.Type {
	case queue.JobBatch:
		line = fmt.Sprintf("job %s: %s, %d running, %d completed, %d failed of %d", j.Name, j.Status, run,
			st.Counts[queue.Completed], st.Counts[queue.Failed], j.Spec.Count)
		switch j.Status {
		case queue.JobComplete:
			return line, true, ""
		case queue.JobFailed, queue.JobStopped:
			return line, true, fmt.Sprintf("job %s %s: %s", j.Name, j.Status, j.StatusReason)
		}
		return line, false, ""
	case queue.JobSystem:
		pending := st.Counts[queue.Pending] + st.Counts[queue.Scheduled] + st.Counts[queue.Starting]
		line = fmt.Sprintf("job %s: %d running, %d starting", j.Name, run, pending)
		return line, pending == 0 && run > 0 || j.Stopped, ""
	}
	d := st.Deployment
	if j.Version != version {
		return fmt.Sprintf("job %s: version %d replaced version %d", j.Name, j.Version, version), true,
			fmt.Sprintf("job %s moved on to version %d", j.Name, j.Version)
	}
	if d == nil || d.Version != version {
		return fmt.Sprintf("job %s: version %d, waiting for its deployment", j.Name, version), j.Stopped, ""
	}
	line = fmt.Sprintf("deployment of %s version %d: %s, %d/%d healthy, %d placed, %d unhealthy", j.Name, d.Version, d.State,
		d.Healthy, d.Desired, d.Placed, d.Unhealthy)
	if d.Reason != "" && d.State != queue.DeploymentSuccessful {
		line += " (" + d.Reason + ")"
	}
	switch d.State {
	case queue.DeploymentSuccessful:
		return line, true, ""
	case queue.DeploymentRunning:
		return line, false, ""
	}
	return line, true, fmt.Sprintf("deployment of %s version %d %s: %s", j.Name, d.Version, d.State, d.Reason)
}

// movedOn explains why a service left the version being followed: its
// deployment failed and the job reverted, or another version came.
func movedOn(ctx context.Context, client *coordinator.Client, st coordinator.JobStatus, version int) string {
	msg := fmt.Sprintf("job %s moved on to version %d", st.Name, st.Version)
	ds, err := client.JobDeployments(ctx, st.Name)
	if err != nil {
		return msg
	}
	for _, d := range ds {
		if d.Version == version {
			msg = fmt.Sprintf("deployment of %s version %d %s: %s", st.Name, version, d.State, d.Reason)
			if st.Version > version {
				msg += fmt.Sprintf("; the job runs version %d now", st.Version)
			}
		}
	}
	return msg
}

// jobLine sums a job up on one line.
func jobLine(st coordinator.JobStatus) string {
	line := fmt.Sprintf("job %s: %s at version %d", st.Name, st.Status, st.Version)
	if d := st.Deployment; d != nil && d.Version == st.Version {
		line += fmt.Sprintf(", deployment %s (%d/%d healthy)", d.State, d.Healthy, d.Desired)
	}
	return line
}

func newJobPlanCmd() *cobra.Command {
	return readingCmd(command("plan FILE", "Show what orch job run FILE would do — create, update in place or by replacing, stop, and where — changing nothing",
		cobra.ExactArgs(1)), func(cmd *cobra.Command, client *coordinator.Client, args []string) (coordinator.JobPlanResult, error) {
		spec, err := readJobSpec(cmd, args[0])
		if err != nil {
			return coordinator.JobPlanResult{}, err
		}
		return client.PlanJob(cmd.Context(), spec)
	}, printed(printPlan))
}

func printPlan(w io.Writer, p coordinator.JobPlanResult) {
	switch {
	case !p.Exists:
		fmt.Fprintf(w, "job %s (%s): new, version 1\n", p.Job, p.Type)
	case p.Changed && p.Version != p.CurrentVersion:
		fmt.Fprintf(w, "job %s (%s): version %d → %d\n", p.Job, p.Type, p.CurrentVersion, p.Version)
	case p.Changed:
		fmt.Fprintf(w, "job %s (%s): stopped; running it resumes version %d\n", p.Job, p.Type, p.Version)
	default:
		fmt.Fprintf(w, "job %s (%s): unchanged at version %d\n", p.Job, p.Type, p.Version)
	}
	for _, d := range p.SpecDiff {
		fmt.Fprintln(w, "  "+printable(d))
	}
	d := p.Diff
	if p.Changed {
		fmt.Fprintf(w, "tasks: %d to create, %d to update in place, %d to replace (destructive), %d to stop, %d unchanged\n",
			d.Create, d.InPlace, d.Destructive, d.Stop, d.Unchanged)
	}
	if len(p.Tasks) > 0 {
		t := newTable(w, "NEW TASK", "VERSION", "NODE")
		for _, pt := range p.Tasks {
			where := pt.Node
			if where == "" {
				where = "not placed: " + pt.Reason
			}
			name := pt.Name
			if pt.Canary {
				name += " (canary)"
			}
			if pt.Delay > 0 {
				where += " (after " + pt.Delay.String() + ")"
			}
			t.row(name, strconv.Itoa(pt.Version), where)
		}
		_ = t.flush()
	}
	for _, s := range p.Stop {
		fmt.Fprintln(w, "stop "+printable(s))
	}
	for _, n := range p.Notes {
		fmt.Fprintln(w, "note: "+printable(n))
	}
}

func newJobListCmd() *cobra.Command {
	return readingCmd(command("list", "List jobs with their versions, status and tasks",
		cobra.NoArgs), listing((*coordinator.Client).ListJobs), func(w io.Writer, _ []string, jobs []queue.JobSummary) error {
		t := newTable(w, "NAME", "TYPE", "VERSION", "STATUS", "RUNNING", "DEPLOYMENT", "AGE")
		for _, j := range jobs {
			running := strconv.Itoa(j.Counts[queue.Running])
			if j.Type == queue.JobService || j.Type == queue.JobBatch {
				running += "/" + strconv.Itoa(j.Spec.Count)
			}
			t.row(j.Name, string(j.Type), strconv.Itoa(j.Version), string(j.Status), running, deploymentCell(j.Deployment), age(j.CreatedAt))
		}
		return t.flush()
	})
}

func deploymentCell(d *queue.Deployment) string {
	if d == nil {
		return "-"
	}
	s := fmt.Sprintf("v%d %s %d/%d", d.Version, d.State, d.Healthy, d.Desired)
	if d.NeedsPromotion() {
		s += " (promote)"
	}
	return s
}

func newJobStatusCmd() *cobra.Command {
	return readingCmd(command("status NAME", "Show a job: type, version, deployment, tasks by state, each task's node and health, recent events",
		cobra.ExactArgs(1)), byName((*coordinator.Client).JobStatus), printed(printJobStatus))
}

func printJobStatus(w io.Writer, st coordinator.JobStatus) {
	j := st.Job
	fmt.Fprintf(w, "Name:        %s\n", j.Name)
	fmt.Fprintf(w, "Type:        %s\n", j.Type)
	version := strconv.Itoa(j.Version)
	if j.StableVersion > 0 {
		version += fmt.Sprintf(" (stable: %d)", j.StableVersion)
	}
	fmt.Fprintf(w, "Version:     %s\n", version)
	status := string(j.Status)
	if j.StatusReason != "" {
		status += " — " + j.StatusReason
	}
	fmt.Fprintf(w, "Status:      %s\n", printable(status))
	if d := st.Deployment; d != nil {
		fmt.Fprintf(w, "Deployment:  version %d %s, %d/%d healthy, %d placed, %d unhealthy", d.Version, d.State, d.Healthy, d.Desired, d.Placed, d.Unhealthy)
		if d.Canaries > 0 {
			fmt.Fprintf(w, ", %d canaries (promoted: %v)", d.Canaries, d.Promoted)
		}
		fmt.Fprintln(w)
		if d.Reason != "" {
			fmt.Fprintf(w, "             %s\n", printable(d.Reason))
		}
	}
	var counts []string
	for _, s := range queue.AllStates {
		if n := st.Counts[s]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, s))
		}
	}
	fmt.Fprintf(w, "Tasks:       %s\n", orDash(strings.Join(counts, ", ")))
	if j.Type == queue.JobPeriodic && j.Spec.Periodic != nil {
		fmt.Fprintf(w, "Schedule:    %s (%s)\n", j.Spec.Periodic.Cron, j.Spec.Periodic.TimeZone)
		if len(st.Instances) > 0 {
			fmt.Fprintln(w)
			t := newTable(w, "INSTANCE", "STATUS", "COMPLETED", "FAILED", "AGE")
			for _, in := range st.Instances {
				t.row(in.Name, string(in.Status), strconv.Itoa(in.Counts[queue.Completed]), strconv.Itoa(in.Counts[queue.Failed]), age(in.CreatedAt))
			}
			_ = t.flush()
		}
	}
	names := map[string]string{}
	if len(st.Tasks) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "TASK", "VERSION", "STATE", "HEALTH", "NODE", "AGE", "ID")
		for _, tk := range st.Tasks {
			names[tk.ID.String()] = tk.Name
			v := "-"
			if tk.JobVersion != nil {
				v = strconv.Itoa(*tk.JobVersion)
			}
			state := string(tk.State)
			if tk.DesiredState == queue.DesiredStopped && !tk.State.Terminal() {
				state += " (stopping)"
			}
			t.row(tk.Name, v, state, orDash(string(tk.Health)), orDash(tk.NodeName), age(tk.CreatedAt), queue.ShortID(tk.ID))
		}
		_ = t.flush()
	}
	if len(st.Events) > 0 {
		fmt.Fprintln(w, "\nRecent events:")
		t := newTable(w, "AGE", "TASK", "CHANGE", "REASON")
		for _, e := range st.Events {
			change := string(e.To)
			if e.From != "" {
				change = string(e.From) + " → " + change
			}
			t.row(age(e.At), orDash(names[e.TaskID.String()]), change, e.Reason)
		}
		_ = t.flush()
	}
}

func newJobHistoryCmd() *cobra.Command {
	return readingCmd(command("history NAME", "List a job's versions, newest first, with what changed in each",
		cobra.ExactArgs(1)), byName((*coordinator.Client).JobVersions), func(w io.Writer, _ []string, vs []queue.JobVersion) error {
		for _, v := range vs {
			fmt.Fprintf(w, "version %d  %s ago  %s\n", v.Version, age(v.CreatedAt), printable(v.Reason))
			for _, d := range v.Diff {
				fmt.Fprintln(w, "    "+printable(d))
			}
		}
		return nil
	})
}

func newJobRevertCmd() *cobra.Command {
	return followingCmd(command("revert NAME VERSION", "Run an earlier version's spec again, as a new version",
		cobra.ExactArgs(2)), detachAtOnce, func(cmd *cobra.Command, client *coordinator.Client, args []string) (coordinator.JobRunResult, error) {
		v, err := strconv.Atoi(args[1])
		if err != nil || v < 1 {
			return coordinator.JobRunResult{}, usageError{err: fmt.Errorf("VERSION %q is not a version number (see orch job history %s)", args[1], args[0])}
		}
		return client.RevertJob(cmd.Context(), args[0], v)
	})
}

func newJobScaleCmd() *cobra.Command {
	return followingCmd(command("scale NAME COUNT", "Change how many tasks a service or batch job runs (a new version; its tasks stay)",
		cobra.ExactArgs(2)), detachAtOnce, func(cmd *cobra.Command, client *coordinator.Client, args []string) (coordinator.JobRunResult, error) {
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return coordinator.JobRunResult{}, usageError{err: fmt.Errorf("COUNT %q is not a number", args[1])}
		}
		return client.ScaleJob(cmd.Context(), args[0], n)
	})
}

func newJobRestartCmd() *cobra.Command {
	return followingCmd(command("restart NAME", "Replace every task of a job with a fresh one: a rolling update of a service, max_parallel at a time",
		cobra.ExactArgs(1)), detachAtOnce, func(cmd *cobra.Command, client *coordinator.Client, args []string) (coordinator.JobRunResult, error) {
		return client.RestartJob(cmd.Context(), args[0])
	})
}

func newJobPromoteCmd() *cobra.Command {
	return readingCmd(command("promote NAME", "Promote a deployment whose canaries are healthy: the rest of the tasks are replaced",
		cobra.ExactArgs(1)), byName((*coordinator.Client).PromoteJob), func(w io.Writer, args []string, d queue.Deployment) error {
		fmt.Fprintf(w, "job %s: deployment of version %d promoted\n", args[0], d.Version)
		return nil
	})
}

func newJobStopCmd() *cobra.Command {
	var purge bool
	cmd := readingCmd(command("stop NAME", "Stop a job's tasks and keep it stopped (orch job run resumes it); --purge deletes it once they have stopped",
		cobra.ExactArgs(1)), func(cmd *cobra.Command, client *coordinator.Client, args []string) (queue.Job, error) {
		return client.StopJob(cmd.Context(), args[0], purge)
	}, func(w io.Writer, _ []string, j queue.Job) error {
		what := "stopping"
		if purge {
			what = "stopping; deleted once its tasks have stopped"
		}
		fmt.Fprintf(w, "job %s: %s\n", j.Name, what)
		return nil
	})
	cmd.Flags().BoolVar(&purge, "purge", false, "delete the job, its versions, deployments and tasks once its tasks have stopped")
	return cmd
}

func newJobEndpointsCmd() *cobra.Command {
	return readingCmd(command("endpoints NAME", "Show where a job's running tasks can be reached (the report_job_endpoints view)",
		cobra.ExactArgs(1)), byName((*coordinator.Client).JobEndpoints), func(w io.Writer, _ []string, eps []queue.Endpoint) error {
		sort.SliceStable(eps, func(i, j int) bool { return eps[i].Task < eps[j].Task })
		t := newTable(w, "TASK", "VERSION", "NODE", "ADDRESS", "PORT", "HEALTHY")
		for _, e := range eps {
			addr := orDash(e.NodeAddress)
			if e.HostPort != nil {
				addr += ":" + strconv.Itoa(*e.HostPort)
			}
			port := "-"
			if e.ContainerPort != nil {
				port = strconv.Itoa(*e.ContainerPort) + "/" + e.Protocol
			}
			t.row(e.Task, strconv.Itoa(e.Version), e.Node, addr, port, strconv.FormatBool(e.Healthy))
		}
		return t.flush()
	})
}

func newJobDeploymentsCmd() *cobra.Command {
	return readingCmd(command("deployments NAME", "List a job's deployments, newest first",
		cobra.ExactArgs(1)), byName((*coordinator.Client).JobDeployments), func(w io.Writer, _ []string, ds []queue.Deployment) error {
		t := newTable(w, "VERSION", "STATE", "HEALTHY", "PLACED", "UNHEALTHY", "STARTED", "REASON")
		for _, d := range ds {
			t.row(strconv.Itoa(d.Version), string(d.State), fmt.Sprintf("%d/%d", d.Healthy, d.Desired), strconv.Itoa(d.Placed),
				strconv.Itoa(d.Unhealthy), age(d.StartedAt), d.Reason)
		}
		return t.flush()
	})
}
