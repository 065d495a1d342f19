// Package pgserver starts and stops a private PostgreSQL cluster: a data
// directory of its own, listening on 127.0.0.1 only, with trust auth for the
// superuser "orch". `orch dev` uses it to keep a database across runs and
// pgtest uses it (with Fast) when no test server is given.
//
// The package is Linux-only in practice: it ties the server's life to the
// calling process with the parent-death signal and reads /proc.
//
// PostgreSQL refuses to run as root. When the caller is root, initdb, postgres
// and pg_ctl are run as the "postgres" OS user (created by the Debian/Ubuntu
// packages) and the data directory is handed to that user.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue/postgres/proc"
)

// User is the superuser initdb creates; connections need no password.
const User = "orch"

// readyTimeout bounds how long Start waits for the server to accept
// connections.
const readyTimeout = 30 * time.Second

// maxSocketPath is the longest unix socket path the kernel accepts
// (sizeof(sun_path) minus the terminating NUL).
const maxSocketPath = 107

// ErrBinariesNotFound is returned (wrapped) when no PostgreSQL server
// binaries can be found.
var ErrBinariesNotFound = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or PATH: install the `postgresql` package (Debian/Ubuntu: `apt-get install postgresql`)")

// Options configure Start.
type Options struct {
	// DataDir is the cluster's data directory. It is created if missing and
	// initialized with initdb only if it is not yet a data directory, so the
	// data survives across runs.
	DataDir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Log receives the output of initdb and of the server. Optional.
	Log io.Writer
	// Fast trades durability for speed (fsync, synchronous_commit and
	// full_page_writes off; initdb --no-sync). For throwaway test clusters
	// only: a crash of the machine can corrupt the data.
	Fast bool
	// Settings are extra server settings (postgres -c name=value), applied
	// after the defaults, so they override them (e.g. max_connections for
	// the benchmark's thousand simulated agents).
	Settings map[string]string
}

// Server is a running cluster.
type Server struct {
	binDir    string
	dataDir   string
	socketDir string
	port      int
	cred      *syscall.Credential // nil: run as ourselves
	reused    bool
	settings  map[string]string

	// ownSocketDir is a directory under /tmp made for the socket, removed
	// on Stop.
	ownSocketDir bool

	// Set when this process started the server.
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd has been waited for
	waitErr error         // cmd.Wait's result, valid after exited is closed
	out     *tailBuffer

	stopOnce sync.Once
	stopErr  error
}

// URL is a connection URL for the database "postgres" as the superuser.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", User, s.port)
}

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// DataDir is the absolute path of the data directory.
func (s *Server) DataDir() string { return s.dataDir }

// Reused reports whether Start found the server already running (left over
// from an earlier run) instead of starting it.
func (s *Server) Reused() bool { return s.reused }

// FindBinaries returns the directory holding initdb, pg_ctl and postgres: the
// highest version under /usr/lib/postgresql/*/bin, else the one on PATH.
func FindBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		return versionLess(filepath.Base(filepath.Dir(dirs[j])), filepath.Base(filepath.Dir(dirs[i])))
	})
	for _, d := range dirs {
		if hasBinaries(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if d := filepath.Dir(p); hasBinaries(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(p, "--bindir").Output(); err == nil {
			if d := strings.TrimSpace(string(out)); hasBinaries(d) {
				return d, nil
			}
		}
	}
	return "", ErrBinariesNotFound
}

func hasBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionLess orders "9.6" < "15" < "16".
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea != nil || eb != nil {
			if pa[i] != pb[i] {
				return pa[i] < pb[i]
			}
			continue
		}
		if na != nb {
			return na < nb
		}
	}
	return len(pa) < len(pb)
}

// Start initializes the data directory if needed and starts the server, or
// reuses one that is already running on that data directory. It returns once
// the server accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pgserver: Options.DataDir is required")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	binDir, err := FindBinaries()
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	out := &tailBuffer{max: 16 << 10}
	var logw io.Writer = out
	if opts.Log != nil {
		logw = io.MultiWriter(opts.Log, out)
	}
	s := &Server{binDir: binDir, dataDir: dataDir, cred: cred, out: out, settings: opts.Settings}

	if err := s.ensureInitialized(ctx, logw, opts.Fast); err != nil {
		return nil, err
	}

	reused, err := s.reuseRunning(ctx, opts.Port)
	if err != nil {
		return nil, err
	}
	if reused {
		return s, nil
	}

	const attempts = 5
	for i := 1; ; i++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, fmt.Errorf("pgserver: pick a port: %w", err)
			}
		}
		err := s.start(ctx, port, logw, opts.Fast)
		if err == nil {
			return s, nil
		}
		// Another process may have taken the port we picked between our
		// probe and the server's bind: try another one.
		if opts.Port == 0 && i < attempts && errors.Is(err, errAddrInUse) && ctx.Err() == nil {
			out.Reset()
			continue
		}
		return nil, err
	}
}

var errAddrInUse = errors.New("address already in use")

// serverCredential is the identity to run the server binaries as: nil for
// ourselves, the postgres OS user when we are root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root: PostgreSQL refuses to run as root and there is no `postgres` OS user to run it as (%v); install the `postgresql` package, create the user (useradd --system postgres) or run as a non-root user", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres OS user has non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	c := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil && uint32(n) != c.Gid {
				c.Groups = append(c.Groups, uint32(n))
			}
		}
	}
	return c, nil
}

// command builds a command for one of the server binaries, run as the
// server's user, in a clean environment.
// The server itself is started with context.Background(): it must outlive
// Start's context, and Stop ends it.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...)
	cmd.Env = serverEnv()
	// Our working directory may not be readable by the postgres user.
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// serverEnv is our environment without the PG* variables (PGDATA, PGPORT,
// PGHOST... would override what we pass) and with C messages, so that the
// errors we look for are in English.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "LANGUAGE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
}

// ensureInitialized runs initdb unless dataDir already holds a cluster.
// initdb writes into a sibling directory that is renamed into place only once
// it succeeded, so an interrupted run never leaves a half-made cluster that a
// later run would take for a real one.
func (s *Server) ensureInitialized(ctx context.Context, logw io.Writer, fast bool) error {
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	if entries, err := os.ReadDir(s.dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("pgserver: data directory %s exists, is not empty and is not a PostgreSQL data directory (no PG_VERSION)", s.dataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pgserver: %w", err)
	}
	parent := filepath.Dir(s.dataDir)
	// Check before creating anything; what MkdirAll adds is reachable.
	existing := parent
	for {
		if _, err := os.Stat(existing); err == nil || existing == filepath.Dir(existing) {
			break
		}
		existing = filepath.Dir(existing)
	}
	if err := s.checkReachable(existing, s.dataDir); err != nil {
		return err
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("pgserver: create %s: %w", parent, err)
	}
	if s.cred != nil {
		// Whatever the umask, what we just made must let the server in.
		for d := parent; d != existing && d != filepath.Dir(d); d = filepath.Dir(d) {
			_ = os.Chmod(d, 0o755)
		}
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(s.dataDir)+".initdb-")
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	if err := s.chown(tmp); err != nil {
		return fmt.Errorf("pgserver: hand %s to the postgres user: %w", tmp, err)
	}
	args := []string{"-D", tmp, "--auth=trust", "--username=" + User, "-E", "UTF8", "--locale=C"}
	if fast {
		args = append(args, "--no-sync")
	}
	cmd := s.command(ctx, "initdb", args...)
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(logw, &buf)
	cmd.Stderr = cmd.Stdout
	if err := runTied(cmd, syscall.SIGTERM); err != nil {
		return fmt.Errorf("pgserver: initdb %s: %w\n%s", s.dataDir, err, strings.TrimSpace(buf.String()))
	}
	// Renaming onto an existing empty directory is allowed on Linux.
	if err := os.Rename(tmp, s.dataDir); err != nil {
		return fmt.Errorf("pgserver: move the new cluster into place: %w", err)
	}
	return nil
}

// runTied runs cmd to completion with the parent-death signal set, so that
// it does not outlive us (initdb traps SIGTERM and removes what it wrote).
// The signal fires when the forking *thread* exits, hence the locked thread,
// which ends with the goroutine once the command is done.
func runTied(cmd *exec.Cmd, sig syscall.Signal) error {
	cmd.SysProcAttr.Pdeathsig = sig
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- cmd.Run()
	}()
	return <-errc
}

// checkReachable makes sure the postgres user can traverse every directory
// down to dir (on the way to target), which is not a given when root picks,
// say, /root/x.
func (s *Server) checkReachable(dir, target string) error {
	if s.cred == nil {
		return nil
	}
	groups := map[uint32]bool{s.cred.Gid: true}
	for _, g := range s.cred.Groups {
		groups[g] = true
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			var x bool
			switch {
			case st.Uid == s.cred.Uid:
				x = mode&0o100 != 0
			case groups[st.Gid]:
				x = mode&0o010 != 0
			default:
				x = mode&0o001 != 0
			}
			if !x {
				return fmt.Errorf("pgserver: the server runs as the postgres OS user (we are root), which cannot reach %s: %s is not searchable by it (mode %v); pick a data directory elsewhere or `chmod o+x %s`", target, d, mode, d)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// pidFile is the content of postmaster.pid.
type pidFile struct {
	pid       int
	port      int
	socketDir string
	status    string
}

func readPidFile(dataDir string) (*pidFile, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	get := func(i int) string {
		if i < len(lines) {
			return strings.TrimSpace(lines[i])
		}
		return ""
	}
	pid, err := strconv.Atoi(get(0))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("malformed postmaster.pid: %q", get(0))
	}
	pf := &pidFile{pid: pid, socketDir: get(4), status: get(7)}
	pf.port, _ = strconv.Atoi(get(3))
	return pf, nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// isPostgres tells whether pid looks like a postgres process. Where /proc
// says nothing we assume it is.
func isPostgres(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return true
	}
	comm := strings.TrimSpace(string(b))
	return strings.HasPrefix(comm, "postgres") || strings.HasPrefix(comm, "postmaster")
}

// reuseRunning adopts a server that is already running on the data
// directory, typically left behind by an earlier run that did not stop it.
func (s *Server) reuseRunning(ctx context.Context, wantPort int) (bool, error) {
	pf, err := readPidFile(s.dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		// postgres itself will judge the lock file.
		return false, nil
	}
	if !processAlive(pf.pid) {
		return false, nil // stale: postgres removes it
	}
	if !isPostgres(pf.pid) {
		// The pid was recycled (after a reboot, say) by something that is not
		// postgres, which would make postgres refuse to start.
		if err := os.Remove(filepath.Join(s.dataDir, "postmaster.pid")); err != nil {
			return false, fmt.Errorf("pgserver: remove stale postmaster.pid: %w", err)
		}
		return false, nil
	}
	if strings.HasPrefix(pf.status, "stopping") {
		// Let it finish, then start afresh.
		deadline := time.Now().Add(readyTimeout)
		for processAlive(pf.pid) {
			if time.Now().After(deadline) {
				return false, fmt.Errorf("pgserver: a PostgreSQL server (pid %d) on %s is shutting down and did not finish within %v", pf.pid, s.dataDir, readyTimeout)
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		return false, nil
	}
	if pf.port == 0 {
		return false, fmt.Errorf("pgserver: a PostgreSQL server (pid %d) is already running on %s but its port is unknown; stop it with `pg_ctl stop -D %s`", pf.pid, s.dataDir, s.dataDir)
	}
	if wantPort != 0 && wantPort != pf.port {
		return false, fmt.Errorf("pgserver: a PostgreSQL server (pid %d) is already running on %s on port %d, not the requested %d; stop it with `pg_ctl stop -D %s`", pf.pid, s.dataDir, pf.port, wantPort, s.dataDir)
	}
	s.port = pf.port
	s.socketDir = pf.socketDir
	s.reused = true
	s.ownSocketDir = isOurTmpSocketDir(pf.socketDir)
	if err := s.waitReady(ctx, func() bool { return !processAlive(pf.pid) }); err != nil {
		return false, fmt.Errorf("pgserver: a PostgreSQL server (pid %d) is already running on %s but is not usable on 127.0.0.1:%d: %w; stop it with `pg_ctl stop -D %s`", pf.pid, s.dataDir, pf.port, err, s.dataDir)
	}
	return true, nil
}

const tmpSocketPrefix = "orchpg-"

func isOurTmpSocketDir(dir string) bool {
	return filepath.Dir(dir) == "/tmp" && strings.HasPrefix(filepath.Base(dir), tmpSocketPrefix)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// socketDirFor picks where the unix socket goes: the data directory unless
// the socket path would be too long (or the path is awkward in a GUC list),
// in which case a fresh directory under /tmp.
func (s *Server) socketDirFor(port int) (dir string, own bool, err error) {
	sock := filepath.Join(s.dataDir, ".s.PGSQL."+strconv.Itoa(port))
	if len(sock) <= maxSocketPath && !strings.ContainsAny(s.dataDir, ",\"' \t\n\\") {
		return s.dataDir, false, nil
	}
	dir, err = os.MkdirTemp("/tmp", tmpSocketPrefix)
	if err != nil {
		return "", false, fmt.Errorf("pgserver: socket directory: %w", err)
	}
	if err := s.chown(dir); err != nil {
		os.Remove(dir)
		return "", false, fmt.Errorf("pgserver: socket directory: %w", err)
	}
	return dir, true, nil
}

// start runs postgres as a child of this process.
func (s *Server) start(ctx context.Context, port int, logw io.Writer, fast bool) error {
	sockDir, ownSock, err := s.socketDirFor(port)
	if err != nil {
		return err
	}
	args := []string{
		"-D", s.dataDir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=" + sockDir,
		"-c", "max_connections=300",
		"-c", "shared_buffers=128MB",
	}
	if fast {
		args = append(args,
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
		)
	}
	names := make([]string, 0, len(s.settings))
	for name := range s.settings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, "-c", name+"="+s.settings[name])
	}
	cmd := s.command(context.Background(), "postgres", args...)
	cmd.Dir = s.dataDir
	cmd.Stdout = logw
	cmd.Stderr = logw
	// Own process group: a Ctrl-C meant for us must not reach the server,
	// which Stop shuts down in order. The parent-death signal (a fast
	// shutdown) makes sure it does not outlive us if we die without Stop.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT

	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the *thread* that forked the
		// child exits, so fork from a locked thread that lives until the
		// server is gone: returning without unlocking then ends the thread.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		if ownSock {
			os.Remove(sockDir)
		}
		return fmt.Errorf("pgserver: start postgres: %w", err)
	}
	s.cmd, s.exited, s.port, s.socketDir, s.ownSocketDir = cmd, exited, port, sockDir, ownSock

	isExited := func() bool {
		select {
		case <-exited:
			return true
		default:
			return false
		}
	}
	if err := s.waitReady(ctx, isExited); err != nil {
		if isExited() {
			err = fmt.Errorf("exited: %v", s.waitErr)
		} else {
			s.kill()
		}
		s.cleanupSocketDir()
		out := s.out.String()
		if strings.Contains(out, "Address already in use") {
			err = fmt.Errorf("%w (%w)", err, errAddrInUse)
		}
		return fmt.Errorf("pgserver: postgres on %s (port %d) did not come up: %w\n%s", s.dataDir, port, err, strings.TrimSpace(out))
	}
	return nil
}

// kill brings down a child that failed to come up.
func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	proc.Terminate(s.cmd.Process, syscall.SIGQUIT, s.exited, 10*time.Second)
}

// waitReady pings until the server accepts connections and turns out to be
// ours (its data_directory is s.dataDir), for at most readyTimeout.
func (s *Server) waitReady(ctx context.Context, gone func() bool) error {
	cfg, err := pgx.ParseConfig(s.URL())
	if err != nil {
		return err
	}
	cfg.ConnectTimeout = 2 * time.Second
	want := s.dataDir
	if real, err := filepath.EvalSymlinks(want); err == nil {
		want = real
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if gone() {
			return errors.New("server process is gone")
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			var dir string
			err = conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir)
			conn.Close(context.Background())
			if err == nil {
				if real, e := filepath.EvalSymlinks(dir); e == nil {
					dir = real
				}
				if dir != want {
					return fmt.Errorf("port %d is served by another cluster (data directory %s)", s.port, dir)
				}
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("no connection within %v: %w", readyTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts the server down with `pg_ctl stop -m fast` and waits until it
// is gone. A reused server is stopped too. Stop is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	defer s.cleanupSocketDir()
	if s.cmd == nil {
		// Not our child: pg_ctl waits for it itself.
		if pf, err := readPidFile(s.dataDir); errors.Is(err, os.ErrNotExist) || (err == nil && !processAlive(pf.pid)) {
			return nil // stopped by someone else already
		}
		return s.pgCtlStop(ctx)
	}
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.pgCtlStop(ctx); err != nil {
		// Ask the postmaster directly: SIGINT is what "fast" sends.
		_ = s.cmd.Process.Signal(syscall.SIGINT)
	}
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
		// Immediate shutdown, then no more waiting politely.
		proc.Terminate(s.cmd.Process, syscall.SIGQUIT, s.exited, 5*time.Second)
		return fmt.Errorf("pgserver: stop %s: %w", s.dataDir, ctx.Err())
	}
}

func (s *Server) pgCtlStop(ctx context.Context) error {
	cmd := s.command(ctx, "pg_ctl", "stop", "-D", s.dataDir, "-m", "fast", "-w", "-t", "60")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgserver: pg_ctl stop -D %s: %w\n%s", s.dataDir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *Server) cleanupSocketDir() {
	if s.ownSocketDir && s.socketDir != "" {
		_ = os.RemoveAll(s.socketDir)
		s.ownSocketDir = false
	}
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

func (t *tailBuffer) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = t.buf[:0]
}
