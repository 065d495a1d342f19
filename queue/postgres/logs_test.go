package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

func logLines(stream queue.LogStream, from, to int, at time.Time) []queue.LogLine {
	var out []queue.LogLine
	for i := from; i <= to; i++ {
		out = append(out, queue.LogLine{At: at.Add(time.Duration(i) * time.Millisecond), Stream: stream, Text: fmt.Sprintf("line %d", i)})
	}
	return out
}

func texts(lines []queue.LogLine) string {
	var b []string
	for _, l := range lines {
		b = append(b, l.Text)
	}
	return strings.Join(b, ",")
}

func TestStore_AppendLogs_KeepsOrderAndTheCapDropsTheOldest(t *testing.T) {
	s, ctx := newStore(t)
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	task := mustTask(t, s, queue.Resources{CPUMillis: 500})
	l := runOn(t, s, task.ID, node.ID)
	limits := queue.LogLimits{MaxLines: 10, MaxBytes: 1 << 20}
	t0 := time.Now()

	res, err := s.AppendLogs(ctx, l, append(logLines(queue.Stdout, 1, 4, t0), logLines(queue.Stderr, 5, 6, t0)...), limits)
	if err != nil || res.Stored != 6 || res.Dropped != 0 {
		t.Fatalf("append = %+v, %v", res, err)
	}
	page, err := s.ReadLogs(ctx, task.ID, LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(page.Lines); got != "line 1,line 2,line 3,line 4,line 5,line 6" {
		t.Errorf("lines = %s", got)
	}
	if page.Lines[4].Stream != queue.Stderr || page.Lines[0].Stream != queue.Stdout || page.Lines[0].Attempt != l.Attempt {
		t.Errorf("streams/attempt wrong: %+v", page.Lines)
	}
	if page.State != queue.Running || page.DroppedLines != 0 {
		t.Errorf("page state %s dropped %d", page.State, page.DroppedLines)
	}

	// 6 + 7 = 13 lines: the 3 oldest go.
	if res, err := s.AppendLogs(ctx, l, logLines(queue.Stdout, 7, 13, t0), limits); err != nil || res.Dropped != 3 {
		t.Fatalf("second append = %+v, %v; want 3 dropped", res, err)
	}
	// A batch bigger than the cap by itself keeps its newest lines.
	if res, err := s.AppendLogs(ctx, l, logLines(queue.Stdout, 14, 30, t0), limits); err != nil || res.Stored != 10 || res.Dropped != 17 {
		t.Fatalf("third append = %+v, %v; want 10 stored, 17 dropped", res, err)
	}
	page, _ = s.ReadLogs(ctx, task.ID, LogQuery{})
	if got := texts(page.Lines); got != "line 21,line 22,line 23,line 24,line 25,line 26,line 27,line 28,line 29,line 30" {
		t.Errorf("after the cap: %s", got)
	}
	if page.DroppedLines != 20 {
		t.Errorf("dropped = %d, want 20", page.DroppedLines)
	}
	tail, _ := s.ReadLogs(ctx, task.ID, LogQuery{Tail: 3})
	if got := texts(tail.Lines); got != "line 28,line 29,line 30" {
		t.Errorf("tail 3 = %s", got)
	}
	after, _ := s.ReadLogs(ctx, task.ID, LogQuery{After: tail.Lines[0].ID})
	if got := texts(after.Lines); got != "line 29,line 30" || after.Next != tail.Next {
		t.Errorf("after = %s next %d", got, after.Next)
	}
	var kept, keptBytes int64
	if err := s.pool.QueryRow(ctx, `SELECT lines, bytes FROM task_log_totals WHERE task_id = $1`, task.ID).Scan(&kept, &keptBytes); err != nil {
		t.Fatal(err)
	}
	if kept != 10 || keptBytes != 70 { // "line NN" is 7 bytes
		t.Errorf("totals say %d lines, %d bytes; want 10, 70", kept, keptBytes)
	}

	// The byte cap: 3 lines of 40 bytes fit under 100 bytes only 2 at a time.
	task2 := mustTask(t, s, queue.Resources{CPUMillis: 500})
	l2 := runOn(t, s, task2.ID, node.ID)
	big := []queue.LogLine{
		{At: t0, Text: strings.Repeat("a", 40)}, {At: t0, Text: strings.Repeat("b", 40)}, {At: t0, Text: strings.Repeat("c", 40)},
	}
	bytesCap := queue.LogLimits{MaxLines: 100, MaxBytes: 100}
	for _, ln := range big {
		if _, err := s.AppendLogs(ctx, l2, []queue.LogLine{ln}, bytesCap); err != nil {
			t.Fatal(err)
		}
	}
	p2, _ := s.ReadLogs(ctx, task2.ID, LogQuery{})
	if len(p2.Lines) != 2 || p2.Lines[0].Text[0] != 'b' || p2.DroppedLines != 1 || p2.DroppedBytes != 40 {
		t.Errorf("byte cap kept %q, dropped %d lines %d bytes", texts(p2.Lines), p2.DroppedLines, p2.DroppedBytes)
	}
}

func TestStore_AppendLogs_FencedByLease(t *testing.T) {
	s, ctx := newStore(t)
	n1, n2, task, l := runningOnOneOfTwo(t, s)
	t0 := time.Now()

	other := l
	other.NodeID = n2.ID
	if _, err := s.AppendLogs(ctx, other, logLines(queue.Stdout, 1, 1, t0), queue.LogLimits{}); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("another node's lines: %v, want ErrNotOwner", err)
	}
	// The attempt ends and the task goes back to pending for a restart: the
	// attempt's last lines are still its own.
	if _, _, err := transition(ctx, s.pool, stateChange{TaskID: task.ID, To: queue.Pending, Lease: &l, Restart: true, Reason: "restart"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendLogs(ctx, l, logLines(queue.Stdout, 1, 2, t0), queue.LogLimits{}); err != nil {
		t.Errorf("last lines of the ended attempt: %v", err)
	}
	if _, err := s.AppendLogs(ctx, other, logLines(queue.Stdout, 3, 3, t0), queue.LogLimits{}); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("another node's lines while pending: %v, want ErrNotOwner", err)
	}
	// Placed again on n2: the old attempt is fenced off, the new one writes.
	l2 := runOn(t, s, task.ID, n2.ID)
	if _, err := s.AppendLogs(ctx, l, logLines(queue.Stdout, 4, 4, t0), queue.LogLimits{}); !errors.Is(err, queue.ErrNotOwner) {
		t.Errorf("superseded attempt: %v, want ErrNotOwner", err)
	}
	if _, err := s.AppendLogs(ctx, l2, logLines(queue.Stderr, 5, 5, t0), queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	page, _ := s.ReadLogs(ctx, task.ID, LogQuery{})
	if got := texts(page.Lines); got != "line 1,line 2,line 5" || page.Lines[2].Attempt != l2.Attempt {
		t.Errorf("lines = %s (%+v)", got, page.Lines)
	}
	if _, err := s.ReadLogs(ctx, uuid.New(), LogQuery{}); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("logs of an unknown task: %v, want ErrNotFound", err)
	}
	if _, err := s.AppendLogs(ctx, queue.Lease{TaskID: uuid.New(), NodeID: n1.ID, Attempt: 1}, logLines(queue.Stdout, 1, 1, t0), queue.LogLimits{}); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("lines of an unknown task: %v, want ErrNotFound", err)
	}
}

func TestStore_AppendLogs_StoresHostileBytesAndResumesFromPosition(t *testing.T) {
	s, ctx := newStore(t)
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 2000, MemoryBytes: 4 << 30, DiskBytes: 10 << 30})
	task := mustTask(t, s, queue.Resources{CPUMillis: 500})
	l := runOn(t, s, task.ID, node.ID)
	if at, err := s.LogPosition(ctx, l); err != nil || !at.IsZero() {
		t.Fatalf("position before anything shipped = %v, %v", at, err)
	}
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	hostile := []queue.LogLine{
		{At: t0, Text: "nul\x00byte"}, {At: t0.Add(time.Microsecond), Text: "bad \xff\xfe utf8"},
		{At: t0.Add(2 * time.Microsecond), Text: "'; DROP TABLE task_logs; --"},
		{At: t0.Add(3 * time.Microsecond), Text: strings.Repeat("x", queue.MaxLogLineBytes+100)},
	}
	if _, err := s.AppendLogs(ctx, l, hostile, queue.LogLimits{}); err != nil {
		t.Fatal(err)
	}
	page, err := s.ReadLogs(ctx, task.ID, LogQuery{})
	if err != nil || len(page.Lines) != 4 {
		t.Fatalf("page = %+v, %v", page, err)
	}
	if page.Lines[0].Text != "nulbyte" || page.Lines[1].Text != "bad \uFFFD utf8" ||
		page.Lines[2].Text != "'; DROP TABLE task_logs; --" || len(page.Lines[3].Text) != queue.MaxLogLineBytes {
		t.Errorf("stored %q %q %q len %d", page.Lines[0].Text, page.Lines[1].Text, page.Lines[2].Text, len(page.Lines[3].Text))
	}
	at, err := s.LogPosition(ctx, l)
	if err != nil || !at.Equal(t0.Add(3*time.Microsecond)) {
		t.Errorf("position = %v, %v; want the last line's time", at, err)
	}
	next := l
	next.Attempt++
	if at, _ := s.LogPosition(ctx, next); !at.IsZero() {
		t.Errorf("another attempt's position = %v, want zero", at)
	}
}
