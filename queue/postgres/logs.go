package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// LogAppend says what one AppendLogs did.
type LogAppend struct {
	Stored  int // lines written
	Dropped int // lines dropped by the cap in this call, old ones and new
}

// logOwnerSQL fences a log write and locks the task's totals row, which
// serializes writers of one task. The lease must be the task's current
// attempt on this node; while the task waits for its next placement
// (node_id is NULL) the attempt's node is read from its placement event, so
// the last lines of an attempt that just ended still count.
const logOwnerSQL = `
WITH owner AS (
    SELECT t.id FROM tasks t
    WHERE t.id = $1 AND t.attempt = $2
      AND COALESCE(t.node_id, (SELECT e.node_id FROM task_events e
                               WHERE e.task_id = t.id AND e.attempt = $2 AND e.to_state = 'scheduled'
                               ORDER BY e.id DESC LIMIT 1)) = $3
)
INSERT INTO task_log_totals AS m (task_id) SELECT id FROM owner
ON CONFLICT (task_id) DO UPDATE SET updated_at = now()
RETURNING m.lines, m.bytes`

const insertLogsSQL = `
INSERT INTO task_logs (task_id, attempt, at, stream, line)
SELECT $1, $2, l.at, l.stream, l.line
FROM unnest($3::timestamptz[], $4::text[], $5::text[]) WITH ORDINALITY AS l(at, stream, line, ord)
ORDER BY l.ord`

// trimLogsSQL deletes a task's oldest lines until at least $2 lines and $3
// bytes are gone: a row goes if it is among the first $2, or if the rows
// before it hold fewer than $3 bytes.
const trimLogsSQL = `
WITH old AS (
    SELECT id, bytes, row_number() OVER w AS rn, sum(bytes) OVER w - bytes AS before
    FROM task_logs WHERE task_id = $1
    WINDOW w AS (ORDER BY id)
), del AS (
    DELETE FROM task_logs l USING old
    WHERE l.id = old.id AND (old.rn <= $2 OR old.before < $3)
    RETURNING l.bytes
)
SELECT count(*), COALESCE(sum(bytes), 0) FROM del`

const updateLogTotalsSQL = `
UPDATE task_log_totals SET lines = $2, bytes = $3, dropped_lines = dropped_lines + $4,
    dropped_bytes = dropped_bytes + $5, shipped_attempt = $6,
    shipped_at = CASE WHEN shipped_attempt = $6 THEN GREATEST(shipped_at, $7) ELSE $7 END,
    updated_at = now()
WHERE task_id = $1`

// cleanLine makes a line storable: Postgres text holds neither NUL bytes nor
// invalid UTF-8, and one line is at most queue.MaxLogLineBytes.
func cleanLine(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if len(s) > queue.MaxLogLineBytes {
		cut := queue.MaxLogLineBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// AppendLogs stores lines of the lease's container output, in order, in one
// transaction. When the task then holds more than limits allow, its oldest
// lines are deleted and counted as dropped. A lease that is not the task's
// current one on its node is refused with queue.ErrNotOwner, and nothing is
// written.
func (s *Store) AppendLogs(ctx context.Context, l queue.Lease, lines []queue.LogLine, limits queue.LogLimits) (LogAppend, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if limits.MaxLines <= 0 {
		limits.MaxLines = queue.DefaultLogLimits.MaxLines
	}
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = queue.DefaultLogLimits.MaxBytes
	}
	if len(lines) == 0 {
		return LogAppend{}, nil
	}
	var shippedAt time.Time
	texts := make([]string, len(lines))
	for i, ln := range lines {
		texts[i] = cleanLine(ln.Text)
		if int64(len(texts[i])) > limits.MaxBytes {
			texts[i] = cleanLine(texts[i][:limits.MaxBytes])
		}
		if ln.At.After(shippedAt) {
			shippedAt = ln.At
		}
	}
	// A batch larger than the cap by itself: keep its newest part only.
	first := 0
	var batchBytes int64
	for i := len(lines) - 1; i >= 0; i-- {
		if int64(len(lines)-i) > limits.MaxLines || batchBytes+int64(len(texts[i])) > limits.MaxBytes {
			first = i + 1
			break
		}
		batchBytes += int64(len(texts[i]))
	}
	var trimmedBytes int64
	for i := 0; i < first; i++ {
		trimmedBytes += int64(len(texts[i]))
	}
	keep := lines[first:]
	ats := make([]time.Time, len(keep))
	streams := make([]string, len(keep))
	for i, ln := range keep {
		ats[i] = ln.At
		if ats[i].IsZero() {
			ats[i] = time.Now()
		}
		streams[i] = string(ln.Stream)
		if ln.Stream != queue.Stderr {
			streams[i] = string(queue.Stdout)
		}
	}
	if shippedAt.IsZero() {
		shippedAt = time.Now()
	}

	var res LogAppend
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		res = LogAppend{}
		var have, haveBytes int64
		err := tx.QueryRow(ctx, logOwnerSQL, l.TaskID, l.Attempt, l.NodeID).Scan(&have, &haveBytes)
		if errors.Is(err, pgx.ErrNoRows) {
			return logRefusal(ctx, tx, l)
		}
		if err != nil {
			return translate(err, "appending logs")
		}
		if len(keep) > 0 {
			if _, err := tx.Exec(ctx, insertLogsSQL, l.TaskID, l.Attempt, ats, streams, texts[first:]); err != nil {
				return translate(err, "appending logs")
			}
		}
		lines, bytes := have+int64(len(keep)), haveBytes+batchBytes
		var delLines, delBytes int64
		if over, overBytes := lines-limits.MaxLines, bytes-limits.MaxBytes; over > 0 || overBytes > 0 {
			if err := tx.QueryRow(ctx, trimLogsSQL, l.TaskID, max(over, 0), max(overBytes, 0)).Scan(&delLines, &delBytes); err != nil {
				return translate(err, "dropping old log lines")
			}
		}
		if _, err := tx.Exec(ctx, updateLogTotalsSQL, l.TaskID, lines-delLines, bytes-delBytes,
			delLines+int64(first), delBytes+trimmedBytes, l.Attempt, shippedAt); err != nil {
			return translate(err, "counting log lines")
		}
		res = LogAppend{Stored: len(keep), Dropped: int(delLines) + first}
		return nil
	})
	return res, err
}

// logRefusal explains why logOwnerSQL found no owner.
func logRefusal(ctx context.Context, tx pgx.Tx, l queue.Lease) error {
	var attempt int
	err := tx.QueryRow(ctx, `SELECT attempt FROM tasks WHERE id = $1`, l.TaskID).Scan(&attempt)
	if err != nil {
		return translate(err, fmt.Sprintf("task %s", l.TaskID))
	}
	return fmt.Errorf("logs of task %s attempt %d on node %s: %w (now attempt %d)", l.TaskID, l.Attempt, l.NodeID, queue.ErrNotOwner, attempt)
}

// LogPosition is the time of the last line shipped of the lease's attempt,
// zero when none was: a restarted agent resumes shipping after it.
func (s *Store) LogPosition(ctx context.Context, l queue.Lease) (time.Time, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var at *time.Time
	err := s.pool.QueryRow(ctx, `SELECT shipped_at FROM task_log_totals WHERE task_id = $1 AND shipped_attempt = $2`,
		l.TaskID, l.Attempt).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && at == nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, translate(err, "reading log position")
	}
	return *at, nil
}

// LogQuery selects lines of a task's output. Zero values mean from the
// start, all lines (up to Limit, default and at most 10,000).
type LogQuery struct {
	After int64 // only lines with a greater ID
	Tail  int   // only the last Tail lines (of those after After)
	Limit int   // at most this many lines, the oldest first
}

// ReadLogs returns lines of a task's stored output, oldest first, with the
// task's state and what the cap dropped. It reads the state first, so a
// reader that sees a terminal state in the page has every line the agent
// shipped before it recorded the end.
func (s *Store) ReadLogs(ctx context.Context, task uuid.UUID, q LogQuery) (queue.LogPage, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if q.Limit <= 0 || q.Limit > 10000 {
		q.Limit = 10000
	}
	page := queue.LogPage{TaskID: task, Lines: []queue.LogLine{}, Next: q.After}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT t.state, COALESCE(l.dropped_lines, 0), COALESCE(l.dropped_bytes, 0)
FROM tasks t LEFT JOIN task_log_totals l ON l.task_id = t.id WHERE t.id = $1`, task).
			Scan(&page.State, &page.DroppedLines, &page.DroppedBytes)
		if err != nil {
			return translate(err, fmt.Sprintf("task %s", task))
		}
		var rows pgx.Rows
		if q.Tail > 0 {
			rows, err = tx.Query(ctx, `SELECT * FROM (
    SELECT id, attempt, at, stream, line FROM task_logs WHERE task_id = $1 AND id > $2 ORDER BY id DESC LIMIT $3
) x ORDER BY id`, task, q.After, min(q.Tail, q.Limit))
		} else {
			rows, err = tx.Query(ctx, `SELECT id, attempt, at, stream, line FROM task_logs
WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3`, task, q.After, q.Limit)
		}
		if err != nil {
			return translate(err, "reading logs")
		}
		lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queue.LogLine, error) {
			var ln queue.LogLine
			err := r.Scan(&ln.ID, &ln.Attempt, &ln.At, &ln.Stream, &ln.Text)
			return ln, err
		})
		if err != nil {
			return translate(err, "reading logs")
		}
		if len(lines) > 0 {
			page.Lines = lines
			page.Next = lines[len(lines)-1].ID
		}
		return nil
	})
	if err != nil {
		return queue.LogPage{}, err
	}
	return page, nil
}
