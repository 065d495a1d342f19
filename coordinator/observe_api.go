package coordinator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// observabilityRoutes adds what users look at: logs, stats, metrics and the
// status page. All of it is read from the database; nothing asks an agent.
func (c *Coordinator) observabilityRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /tasks/{id}/logs", c.taskLogs)
	mux.HandleFunc("GET /tasks/{id}/stats", c.taskStats)
	mux.HandleFunc("GET /nodes/{node}/stats", c.nodeStats)
	mux.HandleFunc("GET /metrics", c.serveMetrics)
	mux.HandleFunc("GET /{$}", c.statusPage)
	mux.HandleFunc("GET /ui/tasks/{id}", c.taskPage)
}

// LogFrame is one message of a followed log (GET /tasks/{id}/logs?follow=true):
// the lines that arrived since the last frame. Done is set on the last one,
// sent once the task has ended and every line it shipped was sent.
type LogFrame struct {
	queue.LogPage
	Done bool `json:"done"`
}

// logPollInterval is how often a follow looks for new lines.
const logPollInterval = 250 * time.Millisecond

func intParam(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, queue.Invalid(name, fmt.Sprintf("%s %q is not a whole number", name, s), fmt.Sprintf("use e.g. %s=100", name))
	}
	return n, nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, queue.Invalid(name, fmt.Sprintf("%s %q is not true or false", name, s), fmt.Sprintf("use %s=true", name))
	}
	return b, nil
}

// query reads a request's query parameters; err is the first bad one
// (or an error before them), after which the rest read as zero.
type query struct {
	r   *http.Request
	err error
}

func (q *query) int(name string) int64 {
	if q.err != nil {
		return 0
	}
	n, err := intParam(q.r, name)
	q.err = err
	return n
}

func (q *query) bool(name string) bool {
	if q.err != nil {
		return false
	}
	b, err := boolParam(q.r, name)
	q.err = err
	return b
}

// taskLogs serves a task's stored output: JSON (a queue.LogPage) by
// default, plain text with format=text; tail=N for the last N lines,
// after=ID to read on from a line; follow=true streams new lines (JSON: one
// LogFrame per line of the answer) until the task ends.
func (c *Coordinator) taskLogs(w http.ResponseWriter, r *http.Request) {
	id, err := c.taskID(r)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	q := query{r: r}
	tail, after, follow := q.int("tail"), q.int("after"), q.bool("follow")
	if q.err != nil {
		c.writeError(w, r, q.err)
		return
	}
	text := false
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
	case "text":
		text = true
	default:
		c.writeError(w, r, queue.Invalid("format", fmt.Sprintf("format %q is neither json nor text", f), "use format=text or format=json"))
		return
	}
	timestamps, err := boolParam(r, "timestamps")
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	const pageLines = 1000
	lq := postgres.LogQuery{After: after, Tail: int(min(tail, 10000)), Limit: 10000}
	if follow {
		lq.Limit = pageLines
		if tail == 0 {
			lq.Tail = 0
		}
	}
	page, err := c.store.ReadLogs(r.Context(), id, lq)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if !follow {
		if text {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			writeLogText(w, page, timestamps)
			return
		}
		writeJSON(w, http.StatusOK, page)
		return
	}

	rc := http.NewResponseController(w)
	if text {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(p queue.LogPage, done bool) bool {
		var err error
		if text {
			writeLogText(w, p, timestamps)
		} else {
			err = enc.Encode(LogFrame{LogPage: p, Done: done})
		}
		if err == nil {
			err = rc.Flush()
		}
		return err == nil
	}
	idle := time.Now()
	for {
		// The state is read before the lines, and an agent ships a task's
		// last lines before it records the end: a terminal page is complete.
		done := page.State.Terminal() && len(page.Lines) < pageLines
		if len(page.Lines) > 0 || done || time.Since(idle) > 15*time.Second {
			if !send(page, done) || done {
				return
			}
			idle = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(logPollInterval):
		}
		page, err = c.store.ReadLogs(r.Context(), id, postgres.LogQuery{After: page.Next, Limit: pageLines})
		if err != nil {
			if r.Context().Err() == nil {
				c.log.Warn("following logs", "task", id, "err", err)
			}
			return // the client reconnects with after=
		}
	}
}

func writeLogText(w http.ResponseWriter, p queue.LogPage, timestamps bool) {
	var b strings.Builder
	for _, l := range p.Lines {
		if timestamps {
			b.WriteString(l.At.UTC().Format(time.RFC3339Nano))
			b.WriteByte(' ')
		}
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	_, _ = w.Write([]byte(b.String()))
}

func (c *Coordinator) taskStats(w http.ResponseWriter, r *http.Request) {
	id, err := c.taskID(r)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if _, err := c.store.GetTask(r.Context(), id); err != nil {
		c.writeError(w, r, err)
		return
	}
	stats, err := c.store.TaskStats(r.Context(), id, int(min(limit, 10000)))
	c.reply(w, r, http.StatusOK, nonNil(stats), err)
}

// NodeDetail is GET /nodes/{node}/stats: the node and its recent samples,
// newest first.
type NodeDetail struct {
	queue.Node
	Stats []queue.NodeSample `json:"stats"`
}

func (c *Coordinator) nodeStats(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	if limit == 0 {
		limit = 20
	}
	n, err := c.store.GetNode(r.Context(), r.PathValue("node"))
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	stats, err := c.store.NodeStats(r.Context(), n.ID, int(min(limit, 10000)))
	c.reply(w, r, http.StatusOK, NodeDetail{Node: n, Stats: nonNil(stats)}, err)
}
