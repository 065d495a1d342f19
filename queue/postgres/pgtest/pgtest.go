// Package pgtest gives each test a fresh, migrated database of its own, so
// that tests can run with t.Parallel() and leave nothing behind.
//
// Packages using it call Main from their TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and then, in a test:
//
//	url := pgtest.New(t) // postgres://... of a database migrated to the latest schema
//
// The server is the one named by ORCH_TEST_DATABASE_URL (a URL for any
// database, as a superuser) when that is set. Otherwise a private server is
// started with pgserver (in a temporary directory, without fsync) the first
// time a test asks for a database, and Main stops it and removes the
// directory once the tests are done. Running as root is fine: pgserver runs
// the server as the postgres OS user.
//
// New clones a template database, orch_tmpl_<hash of the migrations>, which
// is migrated once and then reused by every test and every test process (go
// test runs packages in parallel; an advisory lock keeps them from building
// it twice). On a shared server, templates of older schemas stay behind; drop
// them with `ALTER DATABASE x IS_TEMPLATE false; DROP DATABASE x`.
package pgtest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for goose
	"github.com/pressly/goose/v3"

	"github.com/orchd/orch/queue/postgres/pgserver"
	"github.com/orchd/orch/queue/postgres/proc"
	orchsql "github.com/orchd/orch/sql"
)

// EnvURL names the environment variable holding the admin URL of an
// existing server to test against.
const EnvURL = "ORCH_TEST_DATABASE_URL"

// templateLockKey is the advisory lock (in the admin database) serializing
// template creation across test processes.
const templateLockKey int64 = 0x6f72636874706c // "orchtpl"

var (
	mu        sync.Mutex
	setupDone bool
	setupErr  error
	adminURL  string
	server    *pgserver.Server
	serverDir string

	tmplOnce sync.Once
	tmplName string
	tmplErr  error
)

// Main runs the tests, then each of after (the package's own clean-up:
// removing a Docker image, a temporary directory), then Cleanup, then exits
// with the tests' status. Call it from TestMain.
func Main(m *testing.M, after ...func()) {
	code := m.Run()
	for _, f := range after {
		f()
	}
	if err := Cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Cleanup stops the private server, if one was started, and removes its
// directory. Main calls it; call it yourself only if you do not use Main.
func Cleanup() error {
	mu.Lock()
	defer mu.Unlock()
	var errs []error
	if server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		errs = append(errs, server.Stop(ctx))
		cancel()
		server = nil
	}
	if serverDir != "" {
		errs = append(errs, os.RemoveAll(serverDir))
		serverDir = ""
	}
	setupDone, setupErr, adminURL = false, nil, ""
	tmplOnce, tmplName, tmplErr = sync.Once{}, "", nil
	return errors.Join(errs...)
}

// setup finds or starts the server, once per process.
func setup() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if setupDone {
		return adminURL, setupErr
	}
	setupDone = true
	if u := os.Getenv(EnvURL); u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") {
			setupErr = fmt.Errorf("%s must be a postgres:// URL, got %q", EnvURL, redact(u))
			return "", setupErr
		}
		adminURL = u
		return adminURL, nil
	}
	dir, err := os.MkdirTemp("", "orch-pgtest-")
	if err != nil {
		setupErr = err
		return "", err
	}
	// When we are root the server runs as the postgres user, which must be
	// able to enter the directory that holds its data directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		setupErr = err
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(dir, "data"), Fast: true})
	if err != nil {
		os.RemoveAll(dir)
		setupErr = fmt.Errorf("start a private PostgreSQL server (or set %s to use an existing one): %w", EnvURL, err)
		return "", setupErr
	}
	server, serverDir, adminURL = srv, dir, srv.URL()
	return adminURL, nil
}

// AdminURL is the URL of the server's admin database, as a superuser.
func AdminURL(t testing.TB) string {
	t.Helper()
	u, err := setup()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// New creates a database migrated to the latest schema, returns its URL and
// drops it when the test ends.
func New(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	tmplOnce.Do(func() { tmplName, tmplErr = ensureTemplate(admin) })
	if tmplErr != nil {
		t.Fatalf("pgtest: template database: %v", tmplErr)
	}
	return create(t, admin, tmplName)
}

// NewEmpty creates an empty database (no migrations applied), returns its
// URL and drops it when the test ends.
func NewEmpty(t testing.TB) string {
	t.Helper()
	return create(t, AdminURL(t), "template0")
}

func create(t testing.TB, admin, template string) string {
	t.Helper()
	name := "orch_t_" + proc.RandomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", redact(admin), err)
	}
	defer conn.Close(context.Background())
	stmt := fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", quoteIdent(name), quoteIdent(template))
	// "source database is being accessed by other users" (55006) means
	// someone is connected to the template: wait for them to leave.
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		_, err = conn.Exec(ctx, stmt)
		if !isCode(err, "55006") || !sleep(ctx, delay) {
			break
		}
	}
	if err != nil {
		t.Fatalf("pgtest: %s: %v", stmt, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			_, err = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", quoteIdent(name)))
			conn.Close(context.Background())
		}
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// ensureTemplate returns the name of the template database for the current
// migrations, creating it if needed.
func ensureTemplate(admin string) (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "orch_tmpl_" + sum
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", redact(admin), err)
	}
	defer conn.Close(context.Background())

	exists := func() (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok)
		return ok, err
	}
	if ok, err := exists(); err != nil || ok {
		return name, err
	}
	// Session-level: released when we unlock or the connection goes.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return "", fmt.Errorf("template lock: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", templateLockKey) //nolint:errcheck
	if ok, err := exists(); err != nil || ok {
		return name, err // built by another process while we waited
	}

	// Build under a scratch name and rename at the end, so that the
	// template exists only once it is complete, even if we die halfway.
	build := name + "_build"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(build)+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+quoteIdent(build)+" TEMPLATE template0"); err != nil {
		return "", err
	}
	if err := migrate(ctx, withDatabase(admin, build)); err != nil {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+quoteIdent(build)+" WITH (FORCE)") //nolint:errcheck
		return "", fmt.Errorf("migrate %s: %w", build, err)
	}
	// migrate closed its connections, but a backend can take a moment to
	// go away after its client left, and RENAME (like cloning) fails while
	// anyone is connected.
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", build).Scan(&n)
		if err != nil {
			return "", err
		}
		if n == 0 {
			break
		}
		if !sleep(ctx, delay) {
			return "", fmt.Errorf("%s still has %d connections: %w", build, n, ctx.Err())
		}
	}
	for _, stmt := range []string{
		"ALTER DATABASE " + quoteIdent(build) + " RENAME TO " + quoteIdent(name),
		// Nobody may connect to the template (connections would make
		// CREATE DATABASE ... TEMPLATE fail); superusers can still clone it.
		"ALTER DATABASE " + quoteIdent(name) + " WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return name, nil
}

// migrate applies the embedded migrations with goose.
func migrate(ctx context.Context, dbURL string) error {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, orchsql.Migrations, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return err
	}
	return p.Close() // closes db
}

// migrationsHash is a short hash of the migration files' names and contents.
func migrationsHash() (string, error) {
	names, err := fs.Glob(orchsql.Migrations, "*.sql")
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(orchsql.Migrations, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// withDatabase returns the URL u pointing at database name.
func withDatabase(u, name string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		panic(err) // setup validated it
	}
	parsed.Path = "/" + name
	parsed.RawPath = ""
	return parsed.String()
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "(unparsable URL)"
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// sleep waits for d, or reports false if ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// ServerDir makes a temporary directory, named from prefix, for the data of
// PostgreSQL servers (or a PgBouncer) that a test starts itself, and removes
// it when the test ends. Its mode lets them run as the postgres OS user, as
// pgserver does when the test runs as root.
func ServerDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
