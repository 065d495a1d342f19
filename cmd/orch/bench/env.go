package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgserver"
	"github.com/orchd/orch/queue/postgres/proc"
)

// bench is one run: the server every phase runs against, the bench's own
// connections, the processes it started and the report.
type bench struct {
	opts   Options
	logw   io.Writer // opts.Log
	id     string    // random; names nodes, containers and images of this run
	dir    string    // temporary directory, removed at the end
	server *pgserver.Server
	pglog  *os.File
	url    string
	store  *postgres.Store // the bench's own connections: creating, polling, measuring
	// postmaster is the server's main process when it runs on this machine
	// (0 otherwise): the CPU figures add up its processes in /proc.
	postmaster int
	statements bool            // pg_stat_statements is available
	dockerDB   []time.Duration // create→running of the docker phase's orch runs, by the database's clock

	mu    sync.Mutex
	procs []*child
	coord *child // the coordinator process, started on first need
	// fleets are stopped at the end if a phase failed before it stopped its own.
	fleets []*fleet

	report *Report
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.logw, "orch bench: "+format+"\n", args...)
}

// newBench prepares the server: a private one unless opts name a database.
func newBench(ctx context.Context, o Options) (*bench, error) {
	b := &bench{opts: o, logw: o.Log, id: proc.RandomHex(4), report: newReport(o)}
	dir, err := os.MkdirTemp("", "orch-bench-")
	if err != nil {
		return nil, err
	}
	// When we are root the server runs as the postgres user, which must be
	// able to enter the directory that holds its data.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b.dir = dir
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	b.url = o.DatabaseURL
	if b.url == "" {
		if err := b.startServer(ctx); err != nil {
			return nil, err
		}
	}
	b.report.Server.Private = b.server != nil
	if _, err := postgres.MigrateUp(ctx, b.url); err != nil {
		return nil, fmt.Errorf("migrating the bench database: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(b.url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	cfg.MaxConns = 64 // the bench creates tasks from many goroutines
	if b.store, err = postgres.OpenConfig(ctx, cfg); err != nil {
		return nil, err
	}
	info, err := b.store.ServerInfo(ctx)
	if err != nil {
		return nil, err
	}
	b.report.Server.Version, b.report.Server.Settings = info.Version, info.Settings
	if pm, err := postmasterOf(info.BackendPID); err == nil {
		b.postmaster = pm
	} else {
		b.logf("the server's processes are not visible here (%v): no CPU figures", err)
	}
	if err := b.store.ResetStatements(ctx); err == nil {
		b.statements = true
	}
	ok = true
	return b, nil
}

// startServer starts a private server with durable settings (the figures
// must mean what they would in production), room for every simulated
// agent's connections and pg_stat_statements when the server has it.
func (b *bench) startServer(ctx context.Context) error {
	maxAgents := b.opts.Agents
	for _, n := range append(append([]int{}, b.opts.IdleAgents...), b.opts.LatencyAgents...) {
		maxAgents = max(maxAgents, n)
	}
	settings := map[string]string{
		// An agent holds up to three connections: its LISTEN connection and
		// a pool that its heartbeat, main loop and exit writers share.
		"max_connections":  strconv.Itoa(3*maxAgents + 200),
		"log_min_messages": "warning",
	}
	if bin, err := pgserver.FindBinaries(); err == nil {
		if lib := pgLibDir(bin); lib != "" {
			if _, err := os.Stat(filepath.Join(lib, "pg_stat_statements.so")); err == nil {
				settings["shared_preload_libraries"] = "pg_stat_statements"
			}
		}
	}
	dataDir := b.opts.DataDir
	if dataDir == "" {
		dataDir = filepath.Join(b.dir, "data")
	}
	logf, err := os.Create(filepath.Join(b.dir, "postgres.log"))
	if err != nil {
		return err
	}
	b.logf("starting a private PostgreSQL in %s", dataDir)
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: dataDir, Log: logf, Settings: settings})
	if err != nil {
		logf.Close()
		return err
	}
	b.server, b.pglog, b.url = srv, logf, srv.URL()
	return nil
}

// pgLibDir finds the server's library directory from its bin directory
// (/usr/lib/postgresql/15/bin → /usr/lib/postgresql/15/lib).
func pgLibDir(bin string) string {
	lib := filepath.Join(filepath.Dir(bin), "lib")
	if fi, err := os.Stat(lib); err == nil && fi.IsDir() {
		return lib
	}
	return ""
}

// close stops everything the bench started and removes what it made.
func (b *bench) close() {
	b.mu.Lock()
	fleets, procs := b.fleets, b.procs
	b.fleets, b.procs = nil, nil
	b.mu.Unlock()
	for _, f := range fleets {
		f.stop()
	}
	for _, p := range procs {
		p.stop()
	}
	if b.store != nil {
		b.store.Close()
	}
	if b.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := b.server.Stop(ctx); err != nil {
			b.logf("stopping PostgreSQL: %v", err)
		}
		cancel()
	}
	if b.pglog != nil {
		b.pglog.Close()
	}
	switch {
	case b.dir == "":
	case b.opts.Keep:
		b.logf("kept %s (server data and process logs)", b.dir)
	default:
		os.RemoveAll(b.dir) // a --data-dir of the user's is elsewhere and stays
	}
}
