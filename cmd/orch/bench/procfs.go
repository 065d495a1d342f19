package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// This file reads processes from /proc: CPU time and peak RSS.

// clockTick is the unit of CPU times in /proc/<pid>/stat (USER_HZ), which is
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procStat is what the bench needs from /proc/<pid>/stat.
type procStat struct {
	comm                         string
	state                        string
	ppid                         int
	utime, stime, cutime, cstime int64 // clock ticks
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold spaces and
	// parentheses itself; the fields after the last ')' are plain.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
	return procStat{comm: string(b[open+1 : end]), state: f[0], ppid: int(num(1)),
		utime: num(11), stime: num(12), cutime: num(13), cstime: num(14)}, nil
}

// postmasterOf finds the postmaster from one of its backends.
func postmasterOf(backend int) (int, error) {
	st, err := readProcStat(backend)
	if err != nil {
		return 0, err
	}
	pm, err := readProcStat(st.ppid)
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(pm.comm, "postgres") && !strings.HasPrefix(pm.comm, "postmaster") {
		return 0, fmt.Errorf("the parent of backend %d is %q, not postgres", backend, pm.comm)
	}
	return st.ppid, nil
}

// serverUse is what the server's processes have used so far.
type serverUse struct {
	cpu time.Duration
	// slices counts the times a live process was put on a CPU (schedstat):
	// its growth is how often the server's processes woke up.
	slices   int64
	children int
}

// serverCPU reads the CPU time the server has used: the postmaster's own
// and every live child's, read exactly from /proc/<pid>/schedstat
// (nanoseconds; the ticks of /proc/<pid>/stat are too coarse for a few
// seconds of idle backends), plus that of the children that have exited,
// which the postmaster has waited for (in ticks; an exited child not yet
// waited for counts by its own ticks). Between two readings the sum grows by
// what the server did meanwhile, whether its backends come and go or not.
func serverCPU(postmaster int) (serverUse, error) {
	pm, err := readProcStat(postmaster)
	if err != nil {
		return serverUse{}, fmt.Errorf("reading the postmaster: %w", err)
	}
	var u serverUse
	cpu, slices := procCPU(postmaster, pm)
	u.cpu, u.slices = time.Duration(pm.cutime+pm.cstime)*clockTick+cpu, slices
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return serverUse{}, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.ppid != postmaster {
			continue // gone meanwhile, or not the server's
		}
		cpu, slices := procCPU(pid, st)
		u.cpu += cpu
		u.slices += slices
		u.children++
	}
	return u, nil
}

// procCPU is the CPU time of one single-threaded process and how many
// times it was scheduled: from schedstat when the kernel has it (and the
// process is not a zombie), else its ticks from st.
func procCPU(pid int, st procStat) (time.Duration, int64) {
	if st.state != "Z" {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid)); err == nil {
			if f := strings.Fields(string(b)); len(f) >= 3 {
				ns, err1 := strconv.ParseInt(f[0], 10, 64)
				n, err2 := strconv.ParseInt(f[2], 10, 64)
				if err1 == nil && err2 == nil {
					return time.Duration(ns), n
				}
			}
		}
	}
	return time.Duration(st.utime+st.stime) * clockTick, 0
}

// selfCPU is the CPU time this process has used, all threads.
func selfCPU() time.Duration {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		return 0
	}
	return time.Duration(st.utime+st.stime) * clockTick
}

// peakRSS reads a process's high-water mark of resident memory (VmHWM).
func peakRSS(pid int) (int64, error) {
	return statusKB(pid, "VmHWM:")
}

// statusKB reads a field in kB of /proc/<pid>/status, in bytes.
func statusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s of %d: %w", field, pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// currentRSS reads a process's resident memory now (VmRSS).
func currentRSS(pid int) (int64, error) {
	return statusKB(pid, "VmRSS:")
}
