package bench

// This file runs the orch processes the bench loads: a coordinator and agents.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue/postgres/proc"
)

// child is an orch process the bench started.
type child struct {
	name string
	api  string // a coordinator's base URL
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// startProc runs the orch binary (Options.Orch) with args, with a clean
// environment (no ORCH_* settings, no config file) and its output in a log
// file of the bench.
func (b *bench) startProc(name string, args ...string) (*child, error) {
	logf, err := os.Create(filepath.Join(b.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	home := filepath.Join(b.dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(b.opts.Orch, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORCH_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+home)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Do not outlive the bench if it dies without stopping us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &child{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

// exited reports whether the process has ended.
func (p *child) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail is the end of the process's log, for error messages.
func (p *child) tail() string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// stop sends SIGTERM and waits, killing the process after 20 s.
func (p *child) stop() {
	if p.exited() {
		p.log.Close()
		return
	}
	proc.Terminate(p.cmd.Process, syscall.SIGTERM, p.done, 20*time.Second)
	p.log.Close()
}

// peakRSS is the process's peak resident memory so far.
func (p *child) peakRSS() (int64, error) {
	if p.exited() {
		return 0, fmt.Errorf("%s has exited: %v\n%s", p.name, p.err, p.tail())
	}
	return peakRSS(p.cmd.Process.Pid)
}

// coordinatorProc returns the coordinator process, starting it the first
// time, and its API's base URL.
func (b *bench) coordinatorProc(ctx context.Context) (*child, string, error) {
	b.mu.Lock()
	p := b.coord
	b.mu.Unlock()
	if p != nil {
		if p.exited() {
			return nil, "", fmt.Errorf("the coordinator process has exited: %v\n%s", p.err, p.tail())
		}
		return p, p.api, nil
	}
	addr, err := freeLoopback()
	if err != nil {
		return nil, "", err
	}
	p, err = b.startProc("coordinator", "coordinator", "--database-url", b.url, "--listen", addr, "--no-migrate",
		"--strategy", b.opts.Strategy)
	if err != nil {
		return nil, "", err
	}
	p.api = "http://" + addr
	if err := waitHealthy(ctx, p); err != nil {
		return nil, "", err
	}
	b.mu.Lock()
	b.coord = p
	b.mu.Unlock()
	return p, p.api, nil
}

// coordinatorClient is coordinatorProc with a client of the process's API.
func (b *bench) coordinatorClient(ctx context.Context) (*child, *coordinator.Client, error) {
	p, api, err := b.coordinatorProc(ctx)
	if err != nil {
		return nil, nil, err
	}
	client, err := coordinator.NewClient(api, "")
	return p, client, err
}

// waitHealthy waits up to 30 s for a coordinator process to answer /healthz.
func waitHealthy(ctx context.Context, p *child) error {
	c, err := coordinator.NewClient(p.api, "")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
		}
		if c.Healthz(ctx) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer on %s within 30 s\n%s", p.name, p.api, p.tail())
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// sleepCtx sleeps for d unless ctx ends first; it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// stopCoordinator stops the coordinator process, if it runs, after
// recording its peak RSS over its whole life.
func (b *bench) stopCoordinator() {
	b.mu.Lock()
	p := b.coord
	b.coord = nil
	b.mu.Unlock()
	if p == nil {
		return
	}
	b.noteCoordinatorRSS(p)
	p.stop()
}

// noteCoordinatorRSS keeps the coordinator's peak RSS in the report.
func (b *bench) noteCoordinatorRSS(p *child) {
	rss, err := p.peakRSS()
	if err != nil || b.report.Processes == nil {
		return
	}
	b.report.Processes.CoordinatorPeakRSS = max(b.report.Processes.CoordinatorPeakRSS, rss)
}
