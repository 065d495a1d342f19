package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/orchd/orch/queue"
)

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(headers...)
	return t
}

func (t *table) row(cols ...string) {
	for i := range cols {
		cols[i] = printable(cols[i])
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}
func (t *table) flush() error { return t.tw.Flush() }

// age renders how long ago t was, the way kubectl does.
func age(t time.Time) string { return queue.FormatAge(time.Since(t)) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable makes text from a task (its output, an error a container
// caused) safe to print on an operator's terminal: control characters,
// escape sequences among them, are shown as Go escapes (\x1b, \r) instead
// of being acted on, and invalid UTF-8 as U+FFFD. Tabs stay. Without this,
// a task could move the operator's cursor, rewrite what is on the screen,
// set the window title or worse, with its output alone.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (r < 0x20 && r != '\t') || (r >= 0x7f && r < 0xa0) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteRune(utf8.RuneError)
		case r == '\t':
			b.WriteByte('\t')
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
