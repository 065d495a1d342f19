package coordinator

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

//go:embed ui/*.html
var uiFiles embed.FS

// uiTmpl holds the status page (status.html), the task page (task.html)
// and what they share (layout.html).
var uiTmpl = template.Must(template.New("ui").ParseFS(uiFiles, "ui/*.html"))

// statusRefresh is how often the status page reloads itself, in seconds.
const statusRefresh = 5

// statusTasks is how many of the newest tasks the status page lists.
const statusTasks = 200

type statusMeter struct {
	Kind    string // reserved or used
	Percent int    // 0..100, for the bar
	Text    string
}

type statusNode struct {
	Name, State, Heartbeat string
	Cordoned               bool
	LiveTasks              int
	CPU, Memory, Disk      []statusMeter
}

type statusTask struct {
	ID, ShortID, Name, Image, State, Node, Job, Age string
	// Note says why a task waits or how it ended: the failure reason of a
	// failed task, the scheduler's reason for a pending one; cut to
	// statusNoteLen runes, the whole of it in FullNote (a tooltip).
	Note, FullNote string
	Attempt        int
	// Started: it ran at some point, so it may have logs; otherwise the
	// list links to the task page, which says why it never started.
	Started bool
	Ended   bool // in a terminal state
}

type statusJob struct {
	Name, Type, Status, Reason string
	Version                    int
	Counts                     string
	Deployment                 *statusDeployment
}

type statusDeployment struct {
	Version                             int
	State, Reason                       string
	Desired, Placed, Healthy, Unhealthy int
	Percent                             int // healthy of desired, for the bar
}

// statusFilter is the page's state= and node= query: the task list shows
// only tasks in that state, on that node.
type statusFilter struct {
	State, Node string
	States      []string // every state, for the form
	NodeNames   []string
}

// Active reports whether the filter narrows the list.
func (f statusFilter) Active() bool { return f.State != "" || f.Node != "" }

type statusData struct {
	Refresh         int
	Now             string
	Live, TaskTotal int
	Nodes           []statusNode
	Jobs            []statusJob
	Tasks           []statusTask
	Filter          statusFilter
}

func percent(part, whole float64) int {
	if whole <= 0 {
		return 0
	}
	return int(math.Round(max(0, min(100, 100*part/whole))))
}

// statusNoteLen is how much of a task's note the list shows.
const statusNoteLen = 140

// shorten cuts s to n runes, with an ellipsis when it cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// taskNote is the short account of a task the status page's list shows
// beside its state: why it failed (exit code and error), why it waits.
func taskNote(t *queue.Task) string {
	switch {
	case t.State == queue.Failed || t.State == queue.Completed || t.State == queue.Stopped:
		var parts []string
		if t.ExitCode != nil {
			parts = append(parts, fmt.Sprintf("exit %d", *t.ExitCode))
		}
		if t.Error != "" {
			parts = append(parts, t.Error)
		}
		return strings.Join(parts, ": ")
	default:
		return t.Reason
	}
}

// statusPage is a read-only overview for people: nodes with their capacity,
// reservations and measured usage, jobs with their deployments when there
// are any, and the newest tasks (filtered by state= and node=) with their
// failure reasons and links to their pages and logs. It is rendered on the
// server, has no scripts or external assets, and refreshes itself.
func (c *Coordinator) statusPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	f := postgres.TaskFilter{Limit: statusTasks}
	d := statusData{Refresh: statusRefresh, Now: time.Now().UTC().Format("15:04:05 UTC")}
	d.Filter.State, d.Filter.Node = q.Get("state"), q.Get("node")
	if d.Filter.State != "" {
		st, err := queue.ParseState(d.Filter.State)
		if err != nil {
			c.writeError(w, r, queue.Invalid("state", err.Error(), "use pending, scheduled, starting, running, completed, failed or stopped"))
			return
		}
		f.States = []queue.State{st}
	}
	nodes, err := c.store.ListNodes(ctx)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if d.Filter.Node != "" {
		n, err := c.store.GetNode(ctx, d.Filter.Node)
		if err != nil {
			c.writeError(w, r, err)
			return
		}
		f.NodeID = &n.ID
	}
	samples, err := c.store.LatestNodeSamples(ctx)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	tasks, err := c.store.ListTasks(ctx, f)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	jobs, err := c.store.ListJobs(ctx, postgres.JobFilter{})
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	d.TaskTotal = len(tasks)
	for _, st := range queue.AllStates {
		d.Filter.States = append(d.Filter.States, string(st))
	}
	for _, n := range nodes {
		d.Filter.NodeNames = append(d.Filter.NodeNames, n.Name)
		d.Nodes = append(d.Nodes, statusNodeOf(n, samples[n.ID]))
	}
	jobNames := make(map[string]string, len(jobs))
	for _, j := range jobs {
		jobNames[j.ID.String()] = j.Name
		d.Jobs = append(d.Jobs, statusJobOf(j))
	}
	for _, t := range tasks {
		if t.State.Live() {
			d.Live++
		}
		st := statusTask{ID: t.ID.String(), ShortID: queue.ShortID(t.ID), Name: t.Name, Image: t.Image,
			State: string(t.State), Node: t.NodeName, FullNote: taskNote(&t), Attempt: t.Attempt,
			Age: queue.FormatAge(time.Since(t.CreatedAt)), Started: t.StartedAt != nil, Ended: t.State.Terminal()}
		st.Note = shorten(st.FullNote, statusNoteLen)
		if t.JobID != nil {
			st.Job = jobNames[t.JobID.String()]
		}
		d.Tasks = append(d.Tasks, st)
	}
	c.renderUI(w, r, "status.html", d)
}

func statusNodeOf(n queue.Node, s queue.NodeSample) statusNode {
	memTotal, diskTotal := float64(s.MemoryTotalBytes), float64(s.DiskTotalBytes)
	if memTotal == 0 {
		memTotal = float64(n.Capacity.MemoryBytes)
	}
	if diskTotal == 0 {
		diskTotal = float64(n.Capacity.DiskBytes)
	}
	sn := statusNode{Name: n.Name, State: string(n.State), Cordoned: n.Cordoned, LiveTasks: n.LiveTasks,
		Heartbeat: queue.FormatAge(time.Since(n.LastHeartbeat))}
	sn.CPU = []statusMeter{{Kind: "reserved", Percent: percent(float64(n.Reserved.CPUMillis), float64(n.Capacity.CPUMillis)),
		Text: queue.FormatCPU(n.Reserved.CPUMillis) + " of " + queue.FormatCPU(n.Capacity.CPUMillis) + " cores"}}
	sn.Memory = []statusMeter{{Kind: "reserved", Percent: percent(float64(n.Reserved.MemoryBytes), float64(n.Capacity.MemoryBytes)),
		Text: queue.FormatBytes(n.Reserved.MemoryBytes) + " of " + queue.FormatBytes(n.Capacity.MemoryBytes)}}
	sn.Disk = []statusMeter{{Kind: "reserved", Percent: percent(float64(n.Reserved.DiskBytes), float64(n.Capacity.DiskBytes)),
		Text: queue.FormatBytes(n.Reserved.DiskBytes) + " of " + queue.FormatBytes(n.Capacity.DiskBytes)}}
	if n.Usage.At != nil {
		sn.CPU = append(sn.CPU, statusMeter{Kind: "used", Percent: percent(n.Usage.CPUPercent, 100),
			Text: fmt.Sprintf("%.0f%% of the machine, load %.2f", n.Usage.CPUPercent, n.Usage.Load1)})
		sn.Memory = append(sn.Memory, statusMeter{Kind: "used", Percent: percent(float64(n.Usage.MemoryUsedBytes), memTotal),
			Text: queue.FormatBytes(n.Usage.MemoryUsedBytes) + " of " + queue.FormatBytes(int64(memTotal))})
		sn.Disk = append(sn.Disk, statusMeter{Kind: "used", Percent: percent(float64(n.Usage.DiskUsedBytes), diskTotal),
			Text: queue.FormatBytes(n.Usage.DiskUsedBytes) + " of " + queue.FormatBytes(int64(diskTotal))})
	}
	return sn
}

func statusJobOf(j queue.JobSummary) statusJob {
	sj := statusJob{Name: j.Name, Type: string(j.Type), Status: string(j.Status), Reason: j.StatusReason,
		Version: j.Version, Counts: formatCounts(j.Counts)}
	if dp := j.Deployment; dp != nil {
		sj.Deployment = &statusDeployment{Version: dp.Version, State: string(dp.State), Reason: dp.Reason,
			Desired: dp.Desired, Placed: dp.Placed, Healthy: dp.Healthy, Unhealthy: dp.Unhealthy,
			Percent: percent(float64(dp.Healthy), float64(dp.Desired))}
	}
	return sj
}

// formatCounts writes task counts in life-cycle order: "3 running, 1 failed".
func formatCounts(counts map[queue.State]int) string {
	var parts []string
	for _, st := range queue.AllStates {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		return "no tasks"
	}
	return strings.Join(parts, ", ")
}

// renderUI renders one of the pages into a buffer first, so that a
// template error is an error answer, not half a page.
func (c *Coordinator) renderUI(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := uiTmpl.ExecuteTemplate(&buf, name, data); err != nil {
		c.writeError(w, r, fmt.Errorf("rendering %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// sortedKeys returns m's keys in order, for stable pages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
