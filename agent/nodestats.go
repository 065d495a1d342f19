package agent

import (
	"fmt"
	"time"

	"github.com/c9s/goprocinfo/linux"

	"github.com/orchd/orch/queue"
)

// nodeSampler measures the machine the agent runs on with goprocinfo. CPU
// usage is the busy share of all cores between two samples, so the first
// sample only sets the baseline.
type nodeSampler struct {
	proc     string // /proc, or a copy of it in tests
	diskPath string
	prev     *linux.CPUStat
}

func newNodeSampler(diskPath string) *nodeSampler {
	if diskPath == "" {
		diskPath = "/"
	}
	return &nodeSampler{proc: "/proc", diskPath: diskPath}
}

// sample reads the machine's usage now; ok is false until there is a
// baseline for the CPU figure.
func (s *nodeSampler) sample() (u queue.Usage, ok bool, err error) {
	st, err := linux.ReadStat(s.proc + "/stat")
	if err != nil {
		return u, false, fmt.Errorf("reading %s/stat: %w", s.proc, err)
	}
	cur := st.CPUStatAll
	if s.prev != nil {
		u.CPUPercent = busyPercent(*s.prev, cur)
		ok = true
	}
	s.prev = &cur
	load, err := linux.ReadLoadAvg(s.proc + "/loadavg")
	if err != nil {
		return u, false, fmt.Errorf("reading %s/loadavg: %w", s.proc, err)
	}
	u.Load1 = load.Last1Min
	mem, err := linux.ReadMemInfo(s.proc + "/meminfo")
	if err != nil {
		return u, false, fmt.Errorf("reading %s/meminfo: %w", s.proc, err)
	}
	u.MemoryTotalBytes = int64(mem.MemTotal) * 1024
	avail := mem.MemAvailable
	if avail == 0 { // kernels before 3.14 have no MemAvailable
		avail = mem.MemFree + mem.Buffers + mem.Cached
	}
	u.MemoryUsedBytes = int64(mem.MemTotal-min(avail, mem.MemTotal)) * 1024
	disk, err := linux.ReadDisk(s.diskPath)
	if err != nil {
		return u, false, fmt.Errorf("reading disk usage of %s: %w", s.diskPath, err)
	}
	u.DiskTotalBytes, u.DiskUsedBytes = int64(disk.All), int64(disk.Used)
	now := time.Now()
	u.At = &now
	return u, ok, nil
}

// busyPercent is the share of CPU time not idle between two /proc/stat
// readings. Guest time is already counted in user time, so it is left out.
func busyPercent(prev, cur linux.CPUStat) float64 {
	total := func(c linux.CPUStat) uint64 {
		return c.User + c.Nice + c.System + c.Idle + c.IOWait + c.IRQ + c.SoftIRQ + c.Steal
	}
	idle := func(c linux.CPUStat) uint64 { return c.Idle + c.IOWait }
	dt := float64(total(cur)) - float64(total(prev))
	if dt <= 0 {
		return 0
	}
	di := float64(idle(cur)) - float64(idle(prev))
	p := 100 * (1 - di/dt)
	return max(0, min(100, p))
}
