package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orchd/orch/queue/postgres/proc"
)

// ErrNoBouncer is returned (wrapped) when no pgbouncer binary is found.
var ErrNoBouncer = errors.New("pgbouncer not found (Debian: apt-get install pgbouncer)")

// BouncerOptions configure StartBouncer.
type BouncerOptions struct {
	// Dir holds the pooler's configuration and log (required; it must
	// exist, and as root be reachable by the postgres OS user: not under a
	// directory of mode 0700).
	Dir string
	// PoolSize is the server connections per database and user
	// (default_pool_size; default 20).
	PoolSize int
	// MaxClients bounds the client connections (max_client_conn; default
	// 20000).
	MaxClients int
}

// Bouncer is a running PgBouncer in transaction pooling mode in front of
// one server: the deployment orch supports for fleets too large for a
// server connection each.
type Bouncer struct {
	cmd    *exec.Cmd
	port   int
	target *url.URL
	done   chan struct{}
	log    string
}

// StartBouncer starts PgBouncer (Debian's is 1.18) in transaction mode in
// front of the server of serverURL, trusting every user it forwards (the
// server does the authenticating), on a free loopback port. As root it runs
// as the postgres OS user, which PgBouncer insists on.
func StartBouncer(ctx context.Context, serverURL string, opts BouncerOptions) (*Bouncer, error) {
	bin, err := findBouncer()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: server URL: %w", err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: server URL %q: want host:port", u.Redacted())
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = 20
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = 20000
	}
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	user := u.User.Username()
	conf := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = %d
max_db_connections = %d
server_reset_query =
ignore_startup_parameters = extra_float_digits,search_path,statement_timeout
logfile = %s
log_connections = 0
log_disconnections = 0
`, host, port, listen, filepath.Join(opts.Dir, "users.txt"), opts.PoolSize, opts.MaxClients, opts.PoolSize*2,
		filepath.Join(opts.Dir, "pgbouncer.log"))
	for name, body := range map[string]string{"pgbouncer.ini": conf, "users.txt": fmt.Sprintf("%q \"\"\n", user)} {
		path := filepath.Join(opts.Dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return nil, fmt.Errorf("pgbouncer: %w", err)
		}
	}
	if cred != nil {
		for _, p := range []string{opts.Dir} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("pgbouncer: hand %s to the postgres user: %w", p, err)
			}
		}
	}
	cmd := exec.Command(bin, filepath.Join(opts.Dir, "pgbouncer.ini"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = serverEnv()
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgbouncer: start: %w", err)
	}
	b := &Bouncer{cmd: cmd, port: listen, target: u, done: make(chan struct{}), log: filepath.Join(opts.Dir, "pgbouncer.log")}
	go func() { _ = cmd.Wait(); close(b.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(listen)), time.Second)
		if err == nil {
			c.Close()
			return b, nil
		}
		select {
		case <-b.done:
			return nil, fmt.Errorf("pgbouncer exited at start: %s%s", out.String(), b.tail())
		case <-ctx.Done():
			b.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("pgbouncer does not listen after 10s: %s", b.tail())
		}
	}
}

// URL is serverURL's database, through the pooler. Give orch processes
// the pooler setting with it (orch's --database-pooler transaction).
func (b *Bouncer) URL() string {
	u := *b.target
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port))
	return u.String()
}

// Pid is the pooler's process id (PgBouncer is one process).
func (b *Bouncer) Pid() int { return b.cmd.Process.Pid }

// Stop ends the pooler.
func (b *Bouncer) Stop() {
	select {
	case <-b.done:
		return
	default:
	}
	proc.Terminate(b.cmd.Process, syscall.SIGINT, b.done, 5*time.Second)
}

// tail is the end of the pooler's log, for an error.
func (b *Bouncer) tail() string {
	data, _ := os.ReadFile(b.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

// findBouncer finds the pgbouncer binary on PATH or where Debian puts it.
func findBouncer() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/bin/pgbouncer"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBouncer
}
