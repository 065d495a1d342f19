package coordinator

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

//go:embed ui/status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Parse(statusHTML))

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
	ID, ShortID, Name, Image, State, Node, Note, Age string
	Attempt                                          int
}

type statusData struct {
	Refresh         int
	Now             string
	Live, TaskTotal int
	Nodes           []statusNode
	Tasks           []statusTask
}

func percent(part, whole float64) int {
	if whole <= 0 {
		return 0
	}
	return int(math.Round(max(0, min(100, 100*part/whole))))
}

// statusPage is a read-only overview for people: nodes with their capacity,
// reservations and measured usage, and the newest tasks with links to their
// logs. It is rendered on the server, has no scripts or external assets,
// and refreshes itself.
func (c *Coordinator) statusPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	nodes, err := c.store.ListNodes(ctx)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	samples, err := c.store.LatestNodeSamples(ctx)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	tasks, err := c.store.ListTasks(ctx, postgres.TaskFilter{Limit: statusTasks})
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	d := statusData{Refresh: statusRefresh, Now: time.Now().UTC().Format("15:04:05 UTC"), TaskTotal: len(tasks)}
	for _, n := range nodes {
		s := samples[n.ID]
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
		d.Nodes = append(d.Nodes, sn)
	}
	for _, t := range tasks {
		if t.State.Live() {
			d.Live++
		}
		note := t.Reason
		if t.ExitCode != nil && t.State.Terminal() {
			note = fmt.Sprintf("exit %d", *t.ExitCode)
		}
		d.Tasks = append(d.Tasks, statusTask{ID: t.ID.String(), ShortID: queue.ShortID(t.ID), Name: t.Name, Image: t.Image,
			State: string(t.State), Node: t.NodeName, Note: note, Attempt: t.Attempt, Age: queue.FormatAge(time.Since(t.CreatedAt))})
	}
	var buf bytes.Buffer
	if err := statusTmpl.Execute(&buf, d); err != nil {
		c.writeError(w, r, fmt.Errorf("rendering the status page: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}
