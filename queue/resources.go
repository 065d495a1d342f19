package queue

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Resources is an amount of CPU, memory and disk: what a task requests, what a
// node offers, or what is reserved on it. CPU is in millicores (1000 = one core)
// so that sums stay exact integers in SQL.
type Resources struct {
	CPUMillis   int64 `json:"cpu_millis"`
	MemoryBytes int64 `json:"memory_bytes"`
	DiskBytes   int64 `json:"disk_bytes"`
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.CPUMillis + o.CPUMillis, r.MemoryBytes + o.MemoryBytes, r.DiskBytes + o.DiskBytes}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{r.CPUMillis - o.CPUMillis, r.MemoryBytes - o.MemoryBytes, r.DiskBytes - o.DiskBytes}
}

// Fits reports whether o fits inside r on every dimension.
func (r Resources) Fits(o Resources) bool {
	return o.CPUMillis <= r.CPUMillis && o.MemoryBytes <= r.MemoryBytes && o.DiskBytes <= r.DiskBytes
}

// Limits of what one task may request; beyond them a request is a typo, not a plan.
const (
	MaxCPUMillis   = 1024 * 1000
	MaxMemoryBytes = 64 << 40 // 64 TiB
	MaxDiskBytes   = 1 << 50  // 1 PiB
)

var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1000, "kb": 1000, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1000 * 1000, "mb": 1000 * 1000, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1000 * 1000 * 1000, "gb": 1000 * 1000 * 1000, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1000 * 1000 * 1000 * 1000, "tb": 1000 * 1000 * 1000 * 1000, "ti": 1 << 40, "tib": 1 << 40,
	"p": 1000 * 1000 * 1000 * 1000 * 1000, "pb": 1000 * 1000 * 1000 * 1000 * 1000, "pi": 1 << 50, "pib": 1 << 50,
}

// ParseBytes reads a size such as "512MiB", "2G", "1.5GiB" or "1048576".
// Decimal units (k, M, G, T) are powers of 1000, binary ones (Ki, Mi, Gi, Ti)
// powers of 1024, as Kubernetes reads them.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q in %q", t[i:], s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	if f < 0 {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	v := f * float64(mult)
	if v > float64(math.MaxInt64/2) {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(math.Round(v)), nil
}

// FormatBytes renders a size in the largest binary unit that keeps it readable.
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for math.Abs(f) >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d%s", n, units[0])
	}
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", f), "0"), ".0") + units[i]
}

// ParseCPU reads a CPU amount as cores ("0.5", "2") or millicores ("500m").
func ParseCPU(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty CPU amount")
	}
	milli := strings.HasSuffix(t, "m")
	f, err := strconv.ParseFloat(strings.TrimSuffix(t, "m"), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a CPU amount", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("CPU %q is negative", s)
	}
	if !milli {
		f *= 1000
	}
	if f > MaxCPUMillis*10 {
		return 0, fmt.Errorf("CPU %q is too large", s)
	}
	return int64(math.Round(f)), nil
}

// FormatCPU renders millicores as cores, e.g. 1500 → "1.5".
func FormatCPU(m int64) string {
	return strconv.FormatFloat(float64(m)/1000, 'f', -1, 64)
}

// FormatAge renders a duration the way kubectl shows ages: 42s, 7m, 5h, 3d.
func FormatAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
