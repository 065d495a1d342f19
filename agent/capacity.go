package agent

import (
	"fmt"
	"runtime"

	"github.com/c9s/goprocinfo/linux"

	"github.com/orchd/orch/queue"
)

// MachineCapacity reads what this machine has: CPU cores, total memory and
// the size of the file system at diskPath.
func MachineCapacity(diskPath string) (queue.Resources, error) {
	var r queue.Resources
	cores := runtime.NumCPU()
	if info, err := linux.ReadCPUInfo("/proc/cpuinfo"); err == nil && info.NumCPU() > 0 {
		cores = info.NumCPU()
	}
	r.CPUMillis = int64(cores) * 1000
	mem, err := linux.ReadMemInfo("/proc/meminfo")
	if err != nil {
		return r, fmt.Errorf("reading /proc/meminfo: %w", err)
	}
	r.MemoryBytes = int64(mem.MemTotal) * 1024
	disk, err := linux.ReadDisk(diskPath)
	if err != nil {
		return r, fmt.Errorf("reading disk size of %s: %w", diskPath, err)
	}
	r.DiskBytes = int64(disk.All)
	return r, nil
}

// Cap lowers each dimension of r to the matching one of limit where limit is set (> 0).
func Cap(r, limit queue.Resources) queue.Resources {
	if limit.CPUMillis > 0 && limit.CPUMillis < r.CPUMillis {
		r.CPUMillis = limit.CPUMillis
	}
	if limit.MemoryBytes > 0 && limit.MemoryBytes < r.MemoryBytes {
		r.MemoryBytes = limit.MemoryBytes
	}
	if limit.DiskBytes > 0 && limit.DiskBytes < r.DiskBytes {
		r.DiskBytes = limit.DiskBytes
	}
	return r
}
