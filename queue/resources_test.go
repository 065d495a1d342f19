package queue

import (
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1024": 1024, "512MiB": 512 << 20, "2G": 2_000_000_000, "2Gi": 2 << 30, "1.5GiB": 3 << 29,
		"64mib": 64 << 20, "10k": 10_000, "10 KiB": 10 << 10, "7B": 7,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "-1", "-5MiB", "12XB", "1e400", "NaN", "MiB", "1.2.3G", "99999999999TiB"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseCPU(t *testing.T) {
	for in, want := range map[string]int64{"1": 1000, "0.5": 500, "500m": 500, "2.25": 2250, "0": 0} {
		got, err := ParseCPU(in)
		if err != nil || got != want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "one", "1e99", "NaN", "m", "Inf"} {
		if got, err := ParseCPU(in); err == nil {
			t.Errorf("ParseCPU(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[int64]string{0: "0B", 512: "512B", 1 << 20: "1MiB", 1536 << 20: "1.5GiB", 4 << 30: "4GiB"} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestResources_Fits(t *testing.T) {
	free := Resources{CPUMillis: 1000, MemoryBytes: 1 << 30, DiskBytes: 10 << 30}
	if !free.Fits(Resources{1000, 1 << 30, 0}) {
		t.Error("an exact fit does not fit")
	}
	if free.Fits(Resources{1001, 0, 0}) || free.Fits(Resources{0, 1<<30 + 1, 0}) || free.Fits(Resources{0, 0, 11 << 30}) {
		t.Error("an overflow fits")
	}
}

func TestFormatAge(t *testing.T) {
	for d, want := range map[time.Duration]string{-time.Second: "0s", 42 * time.Second: "42s", 7 * time.Minute: "7m",
		5 * time.Hour: "5h", 47 * time.Hour: "47h", 72 * time.Hour: "3d"} {
		if got := FormatAge(d); got != want {
			t.Errorf("FormatAge(%s) = %q, want %q", d, got, want)
		}
	}
}
