package main

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/orchd/orch/queue"
)

func TestPrintable_ShowsControlSequencesInsteadOfActingOnThem(t *testing.T) {
	for in, want := range map[string]string{
		"plain line":                      "plain line",
		"tab\tstays":                      "tab\tstays",
		"héllo wörld ✓":                   "héllo wörld ✓",
		"\x1b[2J\x1b[Hgone":               `\x1b[2J\x1b[Hgone`,
		"\x1b]0;pwned title\x07":          `\x1b]0;pwned title\x07`,
		"carriage\roverwrite":             `carriage\x0doverwrite`,
		"del\x7f and c1 \u009b31m":        `del\x7f and c1 \u009b31m`,
		"bad utf8 \xff\xfe":               "bad utf8 \uFFFD\uFFFD",
		"bell\a backspace\b null\x00 end": `bell\x07 backspace\x08 null\x00 end`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrintLogLines_RawOnlyWhenAsked(t *testing.T) {
	lines := []queue.LogLine{{Stream: queue.Stdout, Text: "\x1b[31mred\x1b[0m"}}
	var out, errOut bytes.Buffer
	printLogLines(&out, &errOut, lines, false, false)
	if strings.ContainsRune(out.String(), 0x1b) || out.String() != `\x1b[31mred\x1b[0m`+"\n" {
		t.Errorf("printed %q", out.String())
	}
	out.Reset()
	printLogLines(&out, &errOut, lines, false, true)
	if out.String() != "\x1b[31mred\x1b[0m\n" {
		t.Errorf("--raw printed %q", out.String())
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "ok", "\x1b[2J", "\xff", "a\tb\r\n", "\u009b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := printable(s)
		if !utf8.ValidString(got) {
			t.Fatalf("printable(%q) = %q is not valid UTF-8", s, got)
		}
		for _, r := range got {
			if (r < 0x20 && r != '\t') || (r >= 0x7f && r < 0xa0) {
				t.Fatalf("printable(%q) = %q still holds %U", s, got, r)
			}
		}
	})
}
