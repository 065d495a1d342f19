package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNodeSampler_ReadsProcFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("loadavg", "1.25 0.50 0.25 2/300 12345\n")
	write("meminfo", "MemTotal:       8000000 kB\nMemFree:        1000000 kB\nMemAvailable:   6000000 kB\nBuffers: 0 kB\nCached: 0 kB\n")
	write("stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 100 0 100 800 0 0 0 0 0 0\n")
	s := &nodeSampler{proc: dir, diskPath: dir}
	if _, ok, err := s.sample(); err != nil || ok {
		t.Fatalf("first sample: ok=%v err=%v; want a baseline only", ok, err)
	}
	// 1000 more ticks, 250 of them idle: 75% busy.
	write("stat", "cpu  500 0 450 1050 0 0 0 0 0 0\ncpu0 500 0 450 1050 0 0 0 0 0 0\n")
	u, ok, err := s.sample()
	if err != nil || !ok {
		t.Fatalf("second sample: ok=%v err=%v", ok, err)
	}
	if u.CPUPercent != 75 || u.Load1 != 1.25 || u.MemoryTotalBytes != 8000000*1024 || u.MemoryUsedBytes != 2000000*1024 {
		t.Errorf("usage = %+v", u)
	}
	if u.DiskTotalBytes <= 0 || u.DiskUsedBytes <= 0 || u.DiskUsedBytes > u.DiskTotalBytes {
		t.Errorf("disk = %d of %d", u.DiskUsedBytes, u.DiskTotalBytes)
	}
}
