package queue

import (
	"time"

	"github.com/google/uuid"
)

// LogStream names the output stream a log line came from.
type LogStream string

const (
	Stdout LogStream = "stdout"
	Stderr LogStream = "stderr"
)

// LogLine is one line a task's container wrote. ID orders the lines of a
// task; it is set when the line is stored.
type LogLine struct {
	ID      int64     `json:"id,omitempty"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Stream  LogStream `json:"stream"`
	Text    string    `json:"line"`
}

// LogLimits bound what is kept of one task's output: once a task holds more
// lines or bytes than this, its oldest lines are dropped (and counted).
type LogLimits struct {
	MaxLines int64
	MaxBytes int64
}

// DefaultLogLimits is what an agent keeps of each task unless told otherwise.
var DefaultLogLimits = LogLimits{MaxLines: 10000, MaxBytes: 1 << 20}

// MaxLogLineBytes is the longest line stored; longer ones are cut.
const MaxLogLineBytes = 16 << 10

// LogPage is a slice of a task's stored output, oldest first, with the
// counts of what the cap dropped so far.
type LogPage struct {
	TaskID       uuid.UUID `json:"task_id"`
	State        State     `json:"state"`
	Lines        []LogLine `json:"lines"`
	Next         int64     `json:"next"` // pass as After to read on from here
	DroppedLines int64     `json:"dropped_lines"`
	DroppedBytes int64     `json:"dropped_bytes"`
}
