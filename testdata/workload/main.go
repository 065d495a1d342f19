// Command workload is the container orch's tests run. It is built statically
// (CGO_ENABLED=0) and packaged FROM scratch, so it needs nothing from an
// image or a registry.
//
// Its flags act in this order: -logs, -stderr-logs, -write-file,
// -read-file, -mem, -fork-bomb,
// -serve, -tcp, -sleep, then -exit. For example
//
//	workload -logs 3 -serve :8080 -sleep forever
//
// prints three lines, serves HTTP on :8080 and runs until signalled.
//
// SIGTERM and SIGINT make it exit promptly with code 0, unless -ignore-term
// is given, in which case only SIGKILL stops it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ballast keeps the -mem allocation reachable for the life of the process.
var ballast []byte

// early catches SIGTERM and SIGINT from as soon as the program starts. A
// container can be stopped the moment it is started; as PID 1, a Go program
// that has no handler yet would then exit with code 2 (the runtime's
// fallback when the kernel drops the re-raised signal) instead of 0. Once the
// flags are parsed, a signal caught here makes the program exit 0, or is
// dropped under -ignore-term.
var early = make(chan os.Signal, 1)

func init() {
	signal.Notify(early, syscall.SIGTERM, syscall.SIGINT)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("workload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		logs           = fs.Int("logs", 0, "print `N` numbered lines (\"line 1\".. \"line N\") to stdout")
		stderrLogs     = fs.Int("stderr-logs", 0, "print `N` numbered lines to stderr")
		mem            sizeFlag
		memDelay       = fs.Duration("mem-delay", 0, "wait this `duration` before the -mem allocation")
		serve          = fs.String("serve", "", "serve HTTP on `addr` (e.g. :8080) in the background: / answers ok, /healthz answers 200 then 503 after -unhealthy-after")
		unhealthyAfter = fs.Duration("unhealthy-after", 0, "make /healthz answer 503 once this `duration` has elapsed (0: never)")
		tcp            = fs.String("tcp", "", "listen on TCP `addr` (e.g. :9000) in the background, accepting and closing connections")
		sleep          sleepFlag
		exitCode       = fs.Int("exit", 0, "exit with `code`")
		ignoreTerm     = fs.Bool("ignore-term", false, "ignore SIGTERM and SIGINT (only SIGKILL stops the process)")
		forkBomb       = fs.Bool("fork-bomb", false, "start copies of itself that sleep forever until the system refuses another process, then print how many it started")
		writeFile      = fs.String("write-file", "", "write `PATH=TEXT`: TEXT and a newline into the file PATH (after -logs)")
		readFile       = fs.String("read-file", "", "print the content of the file `PATH` to stdout, or exit 1 if it cannot be read (after -write-file)")
	)
	fs.Var(&mem, "mem", "allocate and touch `size` bytes (suffixes: K, KB, KiB, M, MB, MiB, G, GB, GiB)")
	fs.Var(&sleep, "sleep", "sleep for `duration` (e.g. 2s), or \"forever\" to sleep until signalled")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: workload [-logs N] [-stderr-logs N] [-mem SIZE [-mem-delay D]] [-fork-bomb] [-serve :PORT [-unhealthy-after D]] [-tcp :PORT] [-sleep D|forever] [-ignore-term] [-exit N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // fs has printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "workload: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if *logs < 0 || *stderrLogs < 0 {
		fmt.Fprintln(stderr, "workload: -logs and -stderr-logs must not be negative")
		fs.Usage()
		return 2
	}

	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	} else {
		go func() {
			sig := <-early
			fmt.Fprintf(stderr, "workload: got %v, exiting\n", sig)
			os.Exit(0)
		}()
	}

	for i := 1; i <= *logs; i++ {
		fmt.Fprintf(stdout, "line %d\n", i)
	}
	for i := 1; i <= *stderrLogs; i++ {
		fmt.Fprintf(stderr, "line %d\n", i)
	}

	if *writeFile != "" {
		path, text, _ := strings.Cut(*writeFile, "=")
		if err := os.WriteFile(path, []byte(text+"\n"), 0o644); err != nil {
			fmt.Fprintf(stderr, "workload: -write-file: %v\n", err)
			return 1
		}
	}
	if *readFile != "" {
		b, err := os.ReadFile(*readFile)
		if err != nil {
			fmt.Fprintf(stderr, "workload: -read-file: %v\n", err)
			return 1
		}
		stdout.Write(b)
	}

	if mem > 0 {
		time.Sleep(*memDelay)
		ballast = make([]byte, int(mem))
		for i := 0; i < len(ballast); i += 4096 {
			ballast[i] = 1
		}
		fmt.Fprintf(stderr, "workload: allocated %d bytes\n", len(ballast))
	}

	if *forkBomb {
		n, err := bomb()
		fmt.Fprintf(stdout, "fork bomb: started %d processes, then: %v\n", n, err)
	}

	if *serve != "" {
		ln, err := net.Listen("tcp", *serve)
		if err != nil {
			fmt.Fprintf(stderr, "workload: -serve: %v\n", err)
			return 1
		}
		go func() { _ = http.Serve(ln, handler(time.Now(), *unhealthyAfter)) }()
	}

	if *tcp != "" {
		ln, err := net.Listen("tcp", *tcp)
		if err != nil {
			fmt.Fprintf(stderr, "workload: -tcp: %v\n", err)
			return 1
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}

	switch {
	case sleep.forever:
		// Not select{}: with nothing else to wake it (as with -ignore-term),
		// the runtime would call that a deadlock and crash.
		for {
			time.Sleep(time.Hour)
		}
	case sleep.d > 0:
		time.Sleep(sleep.d)
	}

	return *exitCode
}

// bomb starts copies of this program that sleep forever, until starting
// one fails (a pids limit, a memory limit, the system's own limits), and
// returns how many it started and why it stopped. It gives up after a
// million, a limit no test should reach.
func bomb() (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	for n := 0; n < 1_000_000; n++ {
		_, err := syscall.ForkExec(self, []string{self, "-sleep", "forever"}, &syscall.ProcAttr{})
		if err != nil {
			return n, err
		}
	}
	return 1_000_000, errors.New("stopped at a million")
}

func handler(start time.Time, unhealthyAfter time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if unhealthyAfter > 0 && time.Since(start) >= unhealthyAfter {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// sleepFlag is a duration or "forever".
type sleepFlag struct {
	d       time.Duration
	forever bool
}

func (s *sleepFlag) String() string {
	if s.forever {
		return "forever"
	}
	return s.d.String()
}

func (s *sleepFlag) Set(v string) error {
	if v == "forever" {
		s.forever = true
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration or \"forever\": %w", err)
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	s.d, s.forever = d, false
	return nil
}

// sizeFlag is a byte count with an optional unit suffix.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		// Longest suffixes first, so that "MiB" is not read as "B".
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
		{"b", 1},
	}
	s := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q: want a non-negative integer with an optional suffix such as 64MiB", v)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", v)
	}
	return n * mult, nil
}
