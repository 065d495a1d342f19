package coordinator

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// taskPageLogLines is how many of a task's last log lines its page shows.
const taskPageLogLines = 50

type taskPageRow struct{ Key, Value string }

type taskPageEvent struct {
	At, From, To, Node, Exit, Reason string
	Attempt                          int
}

type taskPageData struct {
	Refresh           int
	Now               string
	ID, ShortID, Name string
	State, Job        string
	Live              bool
	// Why is the headline account of a task that failed, waits or never
	// started; empty for one that runs or ran well.
	Why                     string
	Spec, Placement, Health []taskPageRow
	Usage                   []taskPageRow
	Events                  []taskPageEvent
	Logs                    []string
	DroppedLines            int64
	// NoLogs says why there are no lines: the task never started (and why),
	// or it printed nothing.
	NoLogs string
}

// taskPage is GET /ui/tasks/{id}: one task for people, as the status page
// links it: its spec, where and how it runs, its health, its measured usage,
// its history with the reasons, and its last log lines. A task that never
// started says why instead of showing an empty log.
func (c *Coordinator) taskPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := c.taskID(r)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	detail, err := c.taskDetail(ctx, id)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	t, events, usage := detail.Task, detail.Events, detail.Usage
	logs, err := c.store.ReadLogs(ctx, id, postgres.LogQuery{Tail: taskPageLogLines, Limit: taskPageLogLines})
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	nodes, err := c.store.ListNodes(ctx)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	nodeNames := make(map[uuid.UUID]string, len(nodes))
	for _, n := range nodes {
		nodeNames[n.ID] = n.Name
	}
	d := taskPageData{Refresh: statusRefresh, Now: time.Now().UTC().Format("15:04:05 UTC"),
		ID: t.ID.String(), ShortID: queue.ShortID(t.ID), Name: t.Name, State: string(t.State), Live: t.State.Live(),
		DroppedLines: logs.DroppedLines}
	if t.JobID != nil {
		if jobs, err := c.store.ListJobs(ctx, postgres.JobFilter{}); err == nil {
			for _, j := range jobs {
				if j.ID == *t.JobID {
					d.Job = j.Name
				}
			}
		}
	}
	d.Why = taskWhy(&t, events)
	d.Spec = taskSpecRows(&t, d.Job)
	d.Placement = taskPlacementRows(&t)
	if t.HealthCheck != nil {
		hc := t.HealthCheck
		check := fmt.Sprintf("%s on container port %d", hc.Type, hc.Port)
		if hc.Type == queue.HealthHTTP {
			check += ", path " + hc.Path
		}
		check += fmt.Sprintf(", every %s, timeout %s, unhealthy after %d failures", hc.Interval, hc.Timeout, hc.FailureThreshold)
		d.Health = append(d.Health, taskPageRow{"check", check})
		state := string(t.Health)
		if state == "" {
			state = "not probed (the task is not running)"
		}
		d.Health = append(d.Health, taskPageRow{"health", state})
		if t.HealthDetail != "" {
			d.Health = append(d.Health, taskPageRow{"last probe", t.HealthDetail})
		}
		if t.HealthAt != nil {
			d.Health = append(d.Health, taskPageRow{"changed", queue.FormatAge(time.Since(*t.HealthAt)) + " ago"})
		}
	}
	if usage != nil {
		d.Usage = []taskPageRow{
			{"CPU", fmt.Sprintf("%.1f%% of one core (%s)", usage.CPUPercent, reservedCPU(t.Resources.CPUMillis))},
			{"memory", queue.FormatBytes(usage.MemoryUsedBytes) + " of a limit of " + queue.FormatBytes(usage.MemoryLimitBytes)},
			{"measured", fmt.Sprintf("%s ago (attempt %d)", queue.FormatAge(time.Since(usage.At)), usage.Attempt)},
		}
	}
	for _, e := range events {
		pe := taskPageEvent{At: e.At.UTC().Format("2006-01-02 15:04:05.000"), From: string(e.From), To: string(e.To),
			Attempt: e.Attempt, Reason: e.Reason}
		if e.NodeID != nil {
			pe.Node = nodeNames[*e.NodeID]
		}
		if e.ExitCode != nil {
			pe.Exit = fmt.Sprint(*e.ExitCode)
		}
		d.Events = append(d.Events, pe)
	}
	for _, l := range logs.Lines {
		d.Logs = append(d.Logs, l.Text)
	}
	if len(d.Logs) == 0 {
		switch {
		case t.StartedAt == nil && t.State.Terminal():
			d.NoLogs = "No output: the task never started. " + d.Why
		case t.StartedAt == nil:
			d.NoLogs = "No output yet: the task has not started."
			if d.Why != "" {
				d.NoLogs += " " + d.Why
			}
		default:
			d.NoLogs = "The task printed nothing."
		}
	}
	c.renderUI(w, r, "task.html", d)
}

// reservedCPU says what a task reserved of CPU, for its usage.
func reservedCPU(millis int64) string {
	if millis == 0 {
		return "none reserved"
	}
	return "reserved " + queue.FormatCPU(millis) + " cores"
}

// taskWhy is the headline of a task that failed, waits or never started:
// the failure with its exit code and error, or the scheduler's reason, or
// the reason of the task's last event.
func taskWhy(t *queue.Task, events []queue.Event) string {
	last := ""
	if len(events) > 0 {
		last = events[len(events)-1].Reason
	}
	switch t.State {
	case queue.Failed:
		switch {
		case t.Error != "" && t.ExitCode != nil:
			return fmt.Sprintf("Failed with exit code %d: %s", *t.ExitCode, t.Error)
		case t.Error != "":
			return "Failed: " + t.Error
		case last != "":
			return "Failed: " + last // "exited with code 3"
		case t.ExitCode != nil:
			return fmt.Sprintf("Failed with exit code %d", *t.ExitCode)
		}
		return "Failed"
	case queue.Pending:
		if t.Reason != "" {
			return "Waiting: " + t.Reason
		}
	case queue.Stopped:
		if last != "" {
			return "Stopped: " + last
		}
	}
	return ""
}

func taskSpecRows(t *queue.Task, job string) []taskPageRow {
	rows := []taskPageRow{{"image", t.Image}}
	if len(t.Command) > 0 {
		rows = append(rows, taskPageRow{"command", strings.Join(t.Command, " ")})
	}
	if job != "" {
		v := ""
		if t.JobVersion != nil {
			v = fmt.Sprintf(" (version %d)", *t.JobVersion)
		}
		rows = append(rows, taskPageRow{"job", job + v})
	}
	var parts []string
	if t.Resources.CPUMillis > 0 {
		parts = append(parts, queue.FormatCPU(t.Resources.CPUMillis)+" cores")
	}
	if t.Resources.MemoryBytes > 0 {
		parts = append(parts, queue.FormatBytes(t.Resources.MemoryBytes)+" memory")
	}
	if t.Resources.DiskBytes > 0 {
		parts = append(parts, queue.FormatBytes(t.Resources.DiskBytes)+" disk")
	}
	res := strings.Join(parts, ", ")
	if res == "" {
		res = "none reserved"
	}
	rows = append(rows, taskPageRow{"resources", res})
	restart := string(t.RestartPolicy)
	switch {
	case t.RestartPolicy == queue.RestartNever:
	case t.MaxRestarts > 0:
		restart += fmt.Sprintf(", at most %d restarts", t.MaxRestarts)
	default:
		restart += ", unlimited"
	}
	rows = append(rows, taskPageRow{"restart", restart})
	if len(t.Ports) > 0 {
		var ps []string
		for _, p := range t.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			host := "a port the engine chooses"
			if p.HostPort != 0 {
				host = fmt.Sprintf("host port %d", p.HostPort)
			}
			ps = append(ps, fmt.Sprintf("%d/%s on %s", p.ContainerPort, proto, host))
		}
		rows = append(rows, taskPageRow{"ports", strings.Join(ps, "; ")})
	}
	for _, k := range sortedKeys(t.Env) {
		rows = append(rows, taskPageRow{"env " + k, t.Env[k]})
	}
	if len(t.SecretKeys) > 0 {
		rows = append(rows, taskPageRow{"secrets", strings.Join(t.SecretKeys, ", ") + " (values never shown)"})
	}
	if len(t.Constraints) > 0 {
		var cs []string
		for _, c := range t.Constraints {
			cs = append(cs, c.String())
		}
		rows = append(rows, taskPageRow{"constraints", strings.Join(cs, ", ")})
	}
	for _, k := range sortedKeys(t.Labels) {
		rows = append(rows, taskPageRow{"label " + k, t.Labels[k]})
	}
	if t.Strategy != "" {
		rows = append(rows, taskPageRow{"strategy", t.Strategy})
	}
	if t.Network != "" {
		rows = append(rows, taskPageRow{"network", t.Network})
	}
	if t.Privileged {
		rows = append(rows, taskPageRow{"privileged", "yes"})
	}
	return rows
}

func taskPlacementRows(t *queue.Task) []taskPageRow {
	node := t.NodeName
	if node == "" {
		node = "-"
	}
	rows := []taskPageRow{
		{"node", node},
		{"attempt", fmt.Sprint(t.Attempt)},
		{"restarts", fmt.Sprint(t.Restarts)},
		{"desired", string(t.DesiredState)},
	}
	if t.ContainerID != "" {
		rows = append(rows, taskPageRow{"container", t.ContainerID})
	}
	if t.ExitCode != nil {
		rows = append(rows, taskPageRow{"exit code", fmt.Sprint(*t.ExitCode)})
	}
	if t.Error != "" {
		rows = append(rows, taskPageRow{"error", t.Error})
	}
	at := func(k string, tm *time.Time) {
		if tm != nil {
			rows = append(rows, taskPageRow{k, tm.UTC().Format(time.RFC3339) + " (" + queue.FormatAge(time.Since(*tm)) + " ago)"})
		}
	}
	created := t.CreatedAt
	at("created", &created)
	at("started", t.StartedAt)
	at("finished", t.FinishedAt)
	at("not before", t.NotBefore)
	return rows
}
