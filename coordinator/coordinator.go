package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/secrets"
	"github.com/orchd/orch/scheduler"
)

// Defaults of Options: New applies them to fields left zero, and the flags
// of `orch coordinator` show them.
const (
	DefaultPassInterval    = time.Second
	DefaultBatch           = 500
	DefaultNodeDownTimeout = 10 * time.Second
)

// DefaultMaxHeartbeatsPerSecond is Nomad's default: 100 nodes at a 2 s
// interval, 1,000 at 20 s. It is the default of the flag; in Options, 0
// means no limit.
const DefaultMaxHeartbeatsPerSecond = 50

// DefaultMaxHeartbeatInterval bounds the interval the rate limit asks of
// agents, so that a lost node is noticed within 20 s + half the node-down
// timeout + a sweep (27 s with the defaults) however large the cluster:
// beyond 1,000 nodes the cluster beats more than
// DefaultMaxHeartbeatsPerSecond, n/20 a second, 500 at 10,000 nodes. orch
// bench's fleet phase measures what a heartbeat costs PostgreSQL and the
// fleet's idle cost at 1,000 and 10,000 nodes (see package agent,
// Heartbeats). It is the default of the flag; in Options, 0 means no bound.
const DefaultMaxHeartbeatInterval = 20 * time.Second

// Options configure a coordinator.
type Options struct {
	Listen          string
	Strategy        string
	PassInterval    time.Duration
	Batch           int
	NodeDownTimeout time.Duration
	// MaxHeartbeatsPerSecond bounds the heartbeats of the whole cluster:
	// with more live nodes than it allows at their own intervals, agents
	// are asked to beat less often. 0 (or less) means no limit, as for
	// the flag --max-heartbeats-per-second, whose default is
	// DefaultMaxHeartbeatsPerSecond; New applies no default here.
	MaxHeartbeatsPerSecond float64
	// MaxHeartbeatInterval is the longest interval the limit may ask of
	// agents (0: no bound; the flag's default is
	// DefaultMaxHeartbeatInterval).
	MaxHeartbeatInterval time.Duration
	Name                 string // identifies this replica in events and logs
	Logger               *slog.Logger
	// Tokens authenticate API callers. Without any, the API serves loopback
	// only, unless Insecure.
	Tokens   *Tokens
	Insecure bool
	// TLSCert and TLSKey, when set, make the API serve HTTPS.
	TLSCert, TLSKey string
	// SecretsKey seals the secrets of the tasks it accepts (nil: tasks with
	// secrets are refused).
	SecretsKey *secrets.Key
	// ListenDatabaseURL, when the database URL goes through a transaction
	// pooler (which cannot LISTEN), is a direct URL for the coordinator's
	// one LISTEN connection (see wake.go).
	ListenDatabaseURL string
	// Retention is how long finished tasks are kept, with everything
	// recorded about them (0: for ever); `orch coordinator` defaults it to
	// postgres.DefaultRetention. StatsRetention is how long stats history
	// is kept (0: for ever; the flag's default is
	// postgres.DefaultStatsRetention). See retention.go.
	Retention      time.Duration
	StatsRetention time.Duration
	// MetricsListen, when set, is a second address that serves GET /metrics
	// without a token (and nothing else), for a Prometheus that scrapes
	// without credentials; the API's /metrics still needs a read token.
	MetricsListen string
}

// Coordinator serves the API and schedules.
type Coordinator struct {
	store *postgres.Store
	sched *scheduler.Scheduler
	opts  Options
	log   *slog.Logger
	wake  chan struct{}
	// jobWake wakes the job loop (jobs_loop.go).
	jobWake chan struct{}

	metrics *coordMetrics // this replica's counters (metrics.go)
	// metricsAddr is where --metrics-listen was bound, set before Run
	// calls ready.
	metricsAddr net.Addr
	wakes       *wakeHub // agents waiting for work (wake.go)
}

// New checks opts and builds a coordinator over store.
func New(store *postgres.Store, opts Options) (*Coordinator, error) {
	sched, err := scheduler.New(opts.Strategy)
	if err != nil {
		return nil, err
	}
	orDefault(&opts.PassInterval, DefaultPassInterval)
	orDefault(&opts.Batch, DefaultBatch)
	orDefault(&opts.NodeDownTimeout, DefaultNodeDownTimeout)
	if opts.Name == "" {
		host, _ := os.Hostname()
		opts.Name = fmt.Sprintf("coordinator %s/%d", host, os.Getpid())
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Coordinator{store: store, sched: sched, opts: opts, log: opts.Logger, wake: make(chan struct{}, 1), jobWake: make(chan struct{}, 1),
		wakes: newWakeHub()}
	c.metrics = newCoordMetrics()
	return c, nil
}

// Run serves the API on opts.Listen and schedules until ctx ends. ready, if
// not nil, receives the bound address once the listener is up.
func (c *Coordinator) Run(ctx context.Context, ready func(addr net.Addr)) error {
	addr, notice, err := safeListen(c.opts.Listen, !c.opts.Tokens.Empty(), c.opts.Insecure)
	if err != nil {
		return fmt.Errorf("%w: %v", queue.ErrInvalid, err)
	}
	if notice != "" {
		c.log.Warn(notice)
	}
	if (c.opts.TLSCert == "") != (c.opts.TLSKey == "") {
		return queue.Invalid("tls-cert", "--tls-cert and --tls-key go together", "give both, or neither")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	var mln net.Listener
	if c.opts.MetricsListen != "" {
		if mln, err = net.Listen("tcp", c.opts.MetricsListen); err != nil {
			_ = ln.Close()
			return fmt.Errorf("--metrics-listen %s: %w", c.opts.MetricsListen, err)
		}
		c.metricsAddr = mln.Addr()
	}
	if ready != nil {
		ready(ln.Addr())
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	g, ctx := errgroup.WithContext(ctx)
	if mln != nil {
		msrv := &http.Server{Handler: c.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		serveIn(ctx, g, msrv, "metrics", func() error { return msrv.Serve(mln) })
		c.log.Info("coordinator metrics listening (no token)", "addr", mln.Addr().String())
	}
	serve := func() error { return srv.Serve(ln) }
	if c.opts.TLSCert != "" {
		serve = func() error { return srv.ServeTLS(ln, c.opts.TLSCert, c.opts.TLSKey) }
	}
	serveIn(ctx, g, srv, "API", serve)
	g.Go(func() error { c.scheduleLoop(ctx); return nil })
	g.Go(func() error { c.sweepLoop(ctx); return nil })
	g.Go(func() error { c.retentionLoop(ctx); return nil })
	g.Go(func() error { c.jobLoop(ctx); return nil })
	g.Go(func() error {
		ls := c.store
		if c.store.Pooled() {
			if c.opts.ListenDatabaseURL == "" {
				c.log.Warn("the database URL goes through a transaction pooler and there is no --listen-database-url: " +
					"this coordinator polls for work and cannot wake agents; agents poll every --poll-interval")
				<-ctx.Done()
				return nil
			}
			direct, err := postgres.Open(ctx, c.opts.ListenDatabaseURL)
			if err != nil {
				return fmt.Errorf("--listen-database-url: %w", err)
			}
			defer direct.Close()
			ls = direct
		}
		ls.Listen(ctx, []string{postgres.ChannelPending, postgres.ChannelWake, postgres.ChannelJobs}, c.heard)
		return nil
	})
	c.log.Info("coordinator serving", "addr", ln.Addr().String(), "tls", c.opts.TLSCert != "",
		"auth", !c.opts.Tokens.Empty(), "strategy", c.sched.Strategy())
	return g.Wait()
}

// serveIn runs serve in g, and shuts srv down (giving its requests 5 s) once
// ctx ends; what names the server in serve's error.
func serveIn(ctx context.Context, g *errgroup.Group, srv *http.Server, what string, serve func() error) {
	g.Go(func() error {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving %s: %w", what, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shut)
	})
}

// MetricsAddr is the address --metrics-listen was bound to (nil without
// one), known once Run has called ready.
func (c *Coordinator) MetricsAddr() net.Addr { return c.metricsAddr }

// poke asks the scheduling loop for a pass without blocking.
func (c *Coordinator) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
