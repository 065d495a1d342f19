package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Family is one metric family as read back from the text format.
type Family struct {
	Name    string
	Type    string // counter, gauge, histogram, summary or untyped
	Help    string
	Samples []ParsedSample
}

// ParsedSample is one sample line.
type ParsedSample struct {
	Name   string // with _bucket, _sum or _count for histograms
	Labels map[string]string
	Value  float64
}

// ParseText reads the Prometheus text format strictly, as a check that what
// orch serves is well formed: every line is a comment or a sample, every
// sample belongs to a family declared by a TYPE line before it, families
// are not split, names and labels are well formed, values are numbers,
// counters are not negative, and histogram buckets are cumulative up to a
// +Inf bucket equal to the count. It returns the families by name.
func ParseText(r io.Reader) (map[string]*Family, error) {
	fams := map[string]*Family{}
	var cur *Family
	done := map[string]bool{} // families whose block has ended
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		bad := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", n, line, fmt.Sprintf(format, args...))
		}
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE "):
			fields := strings.SplitN(line[7:], " ", 2)
			name := fields[0]
			if !nameRE.MatchString(name) {
				return nil, bad("bad metric name")
			}
			if done[name] {
				return nil, bad("family %s appears twice", name)
			}
			if cur != nil && cur.Name != name {
				done[cur.Name] = true
			}
			f := fams[name]
			if f == nil {
				f = &Family{Name: name, Type: "untyped"}
				fams[name] = f
			}
			if strings.HasPrefix(line, "# TYPE ") {
				if len(fields) != 2 {
					return nil, bad("TYPE without a type")
				}
				if len(f.Samples) > 0 {
					return nil, bad("TYPE after samples")
				}
				switch fields[1] {
				case "counter", "gauge", "histogram", "summary", "untyped":
					f.Type = fields[1]
				default:
					return nil, bad("unknown type %q", fields[1])
				}
			} else if len(fields) == 2 {
				f.Help = fields[1]
			}
			cur = f
		case strings.HasPrefix(line, "#"):
			continue // another comment
		default:
			s, err := parseSample(line)
			if err != nil {
				return nil, bad("%v", err)
			}
			base := s.Name
			if cur != nil && cur.Type == "histogram" {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if strings.HasSuffix(s.Name, suf) && strings.TrimSuffix(s.Name, suf) == cur.Name {
						base = cur.Name
					}
				}
			}
			if cur == nil || base != cur.Name {
				return nil, bad("sample outside the block of its family (declare it with # TYPE first)")
			}
			if cur.Type == "counter" && (s.Value < 0 || math.IsNaN(s.Value)) {
				return nil, bad("negative counter")
			}
			cur.Samples = append(cur.Samples, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, f := range fams {
		if f.Type == "histogram" {
			if err := checkHistogram(f); err != nil {
				return nil, err
			}
		}
	}
	return fams, nil
}

func parseSample(line string) (ParsedSample, error) {
	s := ParsedSample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("no value")
	}
	s.Name = line[:i]
	if !nameRE.MatchString(s.Name) {
		return s, fmt.Errorf("bad metric name %q", s.Name)
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 {
				return s, fmt.Errorf("label without =")
			}
			name := strings.TrimSpace(rest[:eq])
			if !labelRE.MatchString(name) {
				return s, fmt.Errorf("bad label name %q", name)
			}
			if _, dup := s.Labels[name]; dup {
				return s, fmt.Errorf("label %s twice", name)
			}
			rest = rest[eq+1:]
			if !strings.HasPrefix(rest, `"`) {
				return s, fmt.Errorf("label %s: value not quoted", name)
			}
			var val strings.Builder
			j := 1
			closed := false
			for j < len(rest) {
				c := rest[j]
				if c == '\\' {
					if j+1 >= len(rest) {
						return s, fmt.Errorf("label %s: dangling escape", name)
					}
					switch rest[j+1] {
					case '\\':
						val.WriteByte('\\')
					case '"':
						val.WriteByte('"')
					case 'n':
						val.WriteByte('\n')
					default:
						return s, fmt.Errorf("label %s: bad escape \\%c", name, rest[j+1])
					}
					j += 2
					continue
				}
				if c == '"' {
					closed = true
					j++
					break
				}
				val.WriteByte(c)
				j++
			}
			if !closed {
				return s, fmt.Errorf("label %s: unterminated value", name)
			}
			s.Labels[name] = val.String()
			rest = strings.TrimLeft(rest[j:], " ")
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				return s, fmt.Errorf("expected , or } after label %s", name)
			}
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := parseValue(fields[0])
	if err != nil {
		return s, err
	}
	s.Value = v
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return s, fmt.Errorf("bad timestamp %q", fields[1])
		}
	}
	return s, nil
}

func parseValue(v string) (float64, error) {
	switch v {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", v)
	}
	return f, nil
}

// checkHistogram checks each series of a histogram: buckets with le,
// non-decreasing, ending in +Inf equal to _count, and a _sum.
func checkHistogram(f *Family) error {
	type hs struct {
		last     float64
		lastLe   float64
		inf      *float64
		count    *float64
		hasSum   bool
		nBuckets int
	}
	series := map[string]*hs{}
	get := func(labels map[string]string) *hs {
		k := labelKey(labels)
		if series[k] == nil {
			series[k] = &hs{lastLe: math.Inf(-1)}
		}
		return series[k]
	}
	for _, s := range f.Samples {
		switch s.Name {
		case f.Name + "_bucket":
			le, ok := s.Labels["le"]
			if !ok {
				return fmt.Errorf("%s: bucket without le", f.Name)
			}
			bound, err := parseValue(le)
			if err != nil {
				return fmt.Errorf("%s: bucket le %q: %v", f.Name, le, err)
			}
			h := get(s.Labels)
			if bound <= h.lastLe {
				return fmt.Errorf("%s: buckets out of order at le=%s", f.Name, le)
			}
			if s.Value < h.last {
				return fmt.Errorf("%s: bucket le=%s holds %v, less than the bucket before (%v)", f.Name, le, s.Value, h.last)
			}
			h.last, h.lastLe = s.Value, bound
			h.nBuckets++
			if math.IsInf(bound, 1) {
				v := s.Value
				h.inf = &v
			}
		case f.Name + "_count":
			v := s.Value
			get(s.Labels).count = &v
		case f.Name + "_sum":
			get(s.Labels).hasSum = true
		default:
			return fmt.Errorf("%s: unexpected sample %s", f.Name, s.Name)
		}
	}
	for k, h := range series {
		switch {
		case h.inf == nil:
			return fmt.Errorf("%s{%s}: no +Inf bucket", f.Name, k)
		case h.count == nil || *h.count != *h.inf:
			return fmt.Errorf("%s{%s}: _count does not equal the +Inf bucket", f.Name, k)
		case !h.hasSum:
			return fmt.Errorf("%s{%s}: no _sum", f.Name, k)
		}
	}
	return nil
}

// labelKey identifies a series by its labels other than le.
func labelKey(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if k != "le" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, labels[k])
	}
	return b.String()
}

// Value returns the value of the family's sample named name whose labels
// include all of want, and whether there is one.
func (f *Family) Value(name string, want map[string]string) (float64, bool) {
next:
	for _, s := range f.Samples {
		if s.Name != name {
			continue
		}
		for k, v := range want {
			if s.Labels[k] != v {
				continue next
			}
		}
		return s.Value, true
	}
	return 0, false
}
