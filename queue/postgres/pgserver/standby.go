package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// A standby is a streaming replica of a running server, made the way an
// operator makes one: pg_basebackup -R copies the primary's data directory
// and writes standby.signal and primary_conninfo, and the copy is started as
// a hot standby that replays the primary's WAL and answers read-only
// queries. Promote turns it into a primary; Kill is a kill -9 of a server,
// for the failover tests.

// StandbyOptions configure StartStandby.
type StandbyOptions struct {
	// DataDir is the standby's data directory: it must not exist yet or be
	// empty (required).
	DataDir string
	// Name is the standby's application_name towards the primary, which the
	// primary's synchronous_standby_names may list (default "standby").
	Name string
	// Log receives the output of pg_basebackup and of the server.
	Log io.Writer
	// Fast is Options.Fast: fsync and full_page_writes off. Durability is
	// the primary's and its synchronous standby's business in a test, so a
	// test may set it; synchronous_commit is left as the primary's (a
	// standby that commits nothing of its own ignores it until promoted).
	Fast bool
	// Settings are extra server settings, as in Options.
	Settings map[string]string
}

// StartStandby makes a streaming standby of primary and starts it; it
// returns once the standby accepts (read-only) connections. The primary must
// allow replication connections from 127.0.0.1 for its superuser, which the
// clusters Start makes do (initdb --auth=trust).
func StartStandby(ctx context.Context, primary *Server, opts StandbyOptions) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("pgserver: StandbyOptions.DataDir is required")
	}
	if opts.Name == "" {
		opts.Name = "standby"
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("pgserver: standby data directory %s is not empty", dataDir)
	}
	s := &Server{binDir: primary.binDir, dataDir: dataDir, cred: primary.cred}
	parent := filepath.Dir(dataDir)
	if err := s.checkReachable(parent, dataDir); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dataDir)+".basebackup-")
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	if err := s.chown(tmp); err != nil {
		return nil, fmt.Errorf("pgserver: hand %s to the postgres user: %w", tmp, err)
	}
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=%s application_name=%s", primary.port, User, opts.Name)
	cmd := s.command(ctx, "pg_basebackup", "-D", tmp, "-d", conninfo, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync")
	var buf bytes.Buffer
	var logw io.Writer = &buf
	if opts.Log != nil {
		logw = io.MultiWriter(opts.Log, &buf)
	}
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := runTied(cmd, syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("pgserver: pg_basebackup of %s: %w\n%s", primary.dataDir, err, strings.TrimSpace(buf.String()))
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		return nil, fmt.Errorf("pgserver: move the standby into place: %w", err)
	}
	settings := map[string]string{"hot_standby": "on"}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	return Start(ctx, Options{DataDir: dataDir, Log: opts.Log, Fast: opts.Fast, Settings: settings})
}

// InRecovery tells whether the server is a standby (pg_is_in_recovery).
func (s *Server) InRecovery(ctx context.Context) (bool, error) {
	var in bool
	err := s.queryRow(ctx, "SELECT pg_is_in_recovery()", &in)
	return in, err
}

// Promote makes a standby a primary (pg_ctl promote) and returns once it
// accepts writes.
func (s *Server) Promote(ctx context.Context) error {
	cmd := s.command(ctx, "pg_ctl", "promote", "-D", s.dataDir, "-w", "-t", strconv.Itoa(int(readyTimeout/time.Second)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgserver: pg_ctl promote -D %s: %w\n%s", s.dataDir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Kill ends the server at once, as a crash of its machine would: every one
// of its processes gets SIGKILL (kill -9), so there is no shutdown
// checkpoint and no backend says goodbye to its client: connections are cut.
// (Each backend is a process group of its own, hence one kill per process.)
// It works only on a server this process started, and returns once the
// postmaster is gone.
func (s *Server) Kill() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return fmt.Errorf("pgserver: kill %s: not started by this process", s.dataDir)
	}
	pid := s.cmd.Process.Pid
	children := childrenOf(pid) // before the postmaster dies and they are reparented
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgserver: kill %s: %w", s.dataDir, err)
	}
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	<-s.exited
	s.cleanupSocketDir()
	return nil
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		st := string(b)
		i := strings.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(st[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// queryRow runs one query as the superuser on a connection of its own.
func (s *Server) queryRow(ctx context.Context, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
		return fmt.Errorf("pgserver: %s: %w", sql, err)
	}
	return nil
}
