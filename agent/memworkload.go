package agent

import (
	"strconv"
	"time"
)

// WorkloadBehavior makes MemRuntime act like the test workload
// (testdata/workload) given the same arguments: "-sleep D" runs for D,
// "-sleep forever" until stopped, "-exit N" ends with code N; without -sleep
// the container exits at once. Other flags are ignored. Set it as
// MemRuntime.Behave to simulate a fleet running the workload without Docker
// (`orch agent --runtime memory`, `orch bench`).
func WorkloadBehavior(spec ContainerSpec) (runFor time.Duration, exitCode int) {
	runFor = time.Nanosecond // MemRuntime: zero would mean "until stopped"
	args := spec.Command
	for i := 0; i < len(args); i++ {
		name, value, inline := cutFlag(args[i])
		if !inline && i+1 < len(args) && (name == "sleep" || name == "exit") {
			i++
			value = args[i]
		}
		switch name {
		case "sleep":
			if value == "forever" {
				runFor = 0
			} else if d, err := time.ParseDuration(value); err == nil && d > 0 {
				runFor = d
			}
		case "exit":
			if n, err := strconv.Atoi(value); err == nil {
				exitCode = n
			}
		}
	}
	return runFor, exitCode
}

// cutFlag splits "-name=value" or "--name=value" (inline) or "-name".
func cutFlag(arg string) (name, value string, inline bool) {
	if len(arg) < 2 || arg[0] != '-' {
		return "", "", false
	}
	arg = arg[1:]
	if arg[0] == '-' {
		arg = arg[1:]
	}
	for i := 0; i < len(arg); i++ {
		if arg[i] == '=' {
			return arg[:i], arg[i+1:], true
		}
	}
	return arg, "", false
}
