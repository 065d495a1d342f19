package coordinator

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

func lineTexts(lines []queue.LogLine) string {
	var s []string
	for _, l := range lines {
		s = append(s, l.Text)
	}
	return strings.Join(s, ",")
}

func TestLogsAPI_ReadsTailsAndFollowsUntilTheTaskEnds(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("l1")
	tk, lease := r.running(n, "logger")
	t0 := time.Now()
	batch := func(from, to int) []queue.LogLine {
		var out []queue.LogLine
		for i := from; i <= to; i++ {
			s := queue.Stdout
			if i%2 == 0 {
				s = queue.Stderr
			}
			out = append(out, queue.LogLine{At: t0.Add(time.Duration(i) * time.Millisecond), Stream: s, Text: fmt.Sprintf("l%d", i)})
		}
		return out
	}
	if _, err := r.store.AppendLogs(ctx, lease, batch(1, 4), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	id := tk.ID.String()

	code, body, _ := r.get("/tasks/" + id + "/logs")
	var page queue.LogPage
	if err := json.Unmarshal([]byte(body), &page); err != nil || code != 200 {
		t.Fatalf("GET logs: %d %s", code, body)
	}
	if lineTexts(page.Lines) != "l1,l2,l3,l4" || page.Lines[1].Stream != queue.Stderr || page.State != queue.Running {
		t.Errorf("page = %+v", page)
	}
	if code, body, hdr := r.get("/tasks/" + id + "/logs?format=text&tail=2"); code != 200 || body != "l3\nl4\n" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("text tail: %d %q %q", code, body, hdr.Get("Content-Type"))
	}
	for _, bad := range []string{"?tail=-1", "?tail=x", "?follow=maybe", "?format=xml", "?after=1.5"} {
		code, body, _ := r.get("/tasks/" + id + "/logs" + bad)
		var eb ErrorBody
		_ = json.Unmarshal([]byte(body), &eb)
		if code != 400 || eb.Field == "" || eb.Hint == "" {
			t.Errorf("%s: %d %s, want 400 naming the field", bad, code, body)
		}
	}
	if code, _, _ := r.get("/tasks/" + uuid.NewString() + "/logs"); code != 404 {
		t.Errorf("logs of an unknown task: %d, want 404", code)
	}

	// Follow from after the second line: l3, l4, then what arrives, then done.
	resp, err := http.Get(r.srv.URL + "/tasks/" + id + "/logs?follow=true&after=" + fmt.Sprint(page.Lines[1].ID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("follow content type %q", ct)
	}
	frames := make(chan LogFrame, 100)
	go func() {
		defer close(frames)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var f LogFrame
			if json.Unmarshal(sc.Bytes(), &f) == nil {
				frames <- f
			}
		}
	}()
	var got []queue.LogLine
	next := func() LogFrame {
		t.Helper()
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("stream ended early; lines so far %s", lineTexts(got))
			}
			got = append(got, f.Lines...)
			return f
		case <-time.After(20 * time.Second):
			t.Fatalf("no frame in 20 s; lines so far %s", lineTexts(got))
		}
		return LogFrame{}
	}
	if f := next(); f.Done || lineTexts(f.Lines) != "l3,l4" {
		t.Fatalf("first frame %+v", f)
	}
	if _, err := r.store.AppendLogs(ctx, lease, batch(5, 6), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	for len(got) < 4 {
		if f := next(); f.Done {
			t.Fatalf("done before the task ended: %+v", f)
		}
	}
	// The agent ships its last lines, then records the exit.
	if _, err := r.store.AppendLogs(ctx, lease, batch(7, 7), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.RecordExit(ctx, lease, postgres.ExitReport{Code: 0}); err != nil {
		t.Fatal(err)
	}
	for {
		f := next()
		if f.Done {
			if f.State != queue.Completed {
				t.Errorf("last frame state %s", f.State)
			}
			break
		}
	}
	if lineTexts(got) != "l3,l4,l5,l6,l7" {
		t.Errorf("followed %s", lineTexts(got))
	}
	if _, ok := <-frames; ok {
		t.Errorf("frames after done")
	}
}

func TestStatsAPI_NodeAndTaskHistory(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ctx := context.Background()
	n := r.node("s1")
	tk, lease := r.running(n, "measured")
	for i := 1; i <= 3; i++ {
		if err := r.store.ReportUsage(ctx, n.ID, queue.Usage{CPUPercent: float64(i), MemoryUsedBytes: 1 << 30, MemoryTotalBytes: 4 << 30}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.store.ReportTaskUsage(ctx, n.ID, []queue.TaskUsage{{TaskID: tk.ID, Attempt: lease.Attempt, CPUPercent: 25, MemoryUsedBytes: 10 << 20}}); err != nil {
		t.Fatal(err)
	}
	code, body, _ := r.get("/nodes/s1/stats?limit=2")
	var d NodeDetail
	if err := json.Unmarshal([]byte(body), &d); err != nil || code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if d.Name != "s1" || len(d.Stats) != 2 || d.Stats[0].CPUPercent != 3 || d.Usage.CPUPercent != 3 || d.Reserved.CPUMillis != 500 {
		t.Errorf("node detail = %+v", d)
	}
	code, body, _ = r.get("/tasks/" + tk.ID.String())
	var td TaskDetail
	if err := json.Unmarshal([]byte(body), &td); err != nil || code != 200 || td.Usage == nil || td.Usage.CPUPercent != 25 {
		t.Errorf("task detail usage: %d %s", code, body)
	}
	code, body, _ = r.get("/tasks/" + tk.ID.String() + "/stats")
	var ts []queue.TaskUsage
	if err := json.Unmarshal([]byte(body), &ts); err != nil || code != 200 || len(ts) != 1 || ts[0].MemoryUsedBytes != 10<<20 {
		t.Errorf("task stats: %d %s", code, body)
	}
}
