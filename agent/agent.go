package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/secrets"
)

// Defaults of Options: New applies them to fields left zero, and the flags
// of `orch agent` show them. See also DefaultIdlePollInterval and
// DefaultStatsInterval.
const (
	DefaultHeartbeatInterval = 2 * time.Second
	DefaultPollInterval      = 2 * time.Second
	DefaultStopGrace         = 10 * time.Second
	DefaultMaxParallelStarts = 8
	DefaultReconcileInterval = 30 * time.Second
)

// PooledConns bounds an agent's connections to a transaction pooler
// (orch agent --database-pooler transaction): two are all it uses at once
// (its loop, and a heartbeat or stats beside it), and through the pooler
// they cost PostgreSQL nothing while idle.
const PooledConns = 2

// Options configure an agent.
type Options struct {
	Name     string
	Address  string
	Labels   map[string]string
	Capacity queue.Resources // what the node offers; see MachineCapacity and Cap
	// HeartbeatInterval is how often the agent tells the cluster it is alive.
	HeartbeatInterval time.Duration
	// PollInterval is the fallback for missed notifications: the agent looks
	// for work at least this often while its notification connection is down.
	PollInterval time.Duration
	// IdlePollInterval is how often it looks anyway while that connection is
	// up (default DefaultIdlePollInterval); see pollDelay.
	IdlePollInterval time.Duration
	// Coordinators are the API addresses of the coordinators, which an
	// agent behind a transaction pooler long-polls for wake-ups (it cannot
	// LISTEN), with CoordinatorToken (any scope) when they ask for one.
	Coordinators     []string
	CoordinatorToken string
	// StopGrace is how long a container gets to exit after SIGTERM.
	StopGrace time.Duration
	// MaxParallelStarts bounds concurrent container starts.
	MaxParallelStarts int
	Logger            *slog.Logger
	// RestartBackoff is the delay before a task's restarts (see queue.Backoff).
	RestartBackoff queue.Backoff
	// ReconcileInterval is how often the agent compares, in full, the
	// containers labelled with its node against what the database says it
	// owns (it also does so at start, when it learns its node was declared
	// down, and when its engine comes back). Leases alone are checked at
	// every step.
	ReconcileInterval time.Duration
	// ImageFailures is how many image pulls failing in a row make the node
	// unhealthy (for ImageCooloff after the last one), so that tasks go to
	// nodes that can pull.
	ImageFailures int
	ImageCooloff  time.Duration
	// AllowPrivileged lets the node run privileged containers and
	// containers on the host's network (tasks only an admin may submit).
	AllowPrivileged bool
	// AllowHostMounts lets the node bind host paths below HostMountPrefix
	// (default DefaultHostMountPrefix) into containers (tasks only an
	// admin may submit).
	AllowHostMounts bool
	HostMountPrefix string
	// StatsInterval is how often the agent measures its machine and its
	// containers and writes the figures to the database (default
	// DefaultStatsInterval).
	StatsInterval time.Duration
	// DiskPath is the file system whose usage the node reports (default /).
	DiskPath string
	// LogLimits bound what is kept of each task's output (default
	// queue.DefaultLogLimits).
	LogLimits queue.LogLimits
	// SecretsKey opens the secrets of the tasks the node runs (nil: the
	// node runs no task that has secrets; such a task fails to start).
	SecretsKey *secrets.Key
	// PidsLimit bounds the processes of each task container (0: no limit;
	// a task may ask for fewer). `orch agent` defaults it to
	// DefaultPidsLimit.
	PidsLimit int64
	// ContainerLogMaxBytes and ContainerLogMaxFiles bound the engine's own
	// log files of each container (0: the engine's default); `orch agent`
	// defaults them to DefaultContainerLogMaxBytes and
	// DefaultContainerLogMaxFiles.
	ContainerLogMaxBytes int64
	ContainerLogMaxFiles int
	// LogFlushTimeout bounds how long recording a container's exit waits for
	// its last log lines to be shipped (default 5 s).
	LogFlushTimeout time.Duration
}

// Agent runs the tasks placed on one node.
type Agent struct {
	wakeState // is the LISTEN connection up (wake.go)

	store *postgres.Store
	rt    Runtime
	opts  Options
	log   *slog.Logger
	node  queue.Node
	wake  chan struct{}

	engine engineHealth
	// reconcileNeeded asks the main loop for a full reconcile.
	reconcileNeeded atomic.Bool
	// volumesDue asks the main loop to sync volumes (syncVolumes): set by
	// a "volumes" wake-up and with every full reconcile.
	volumesDue atomic.Bool
	// draining mirrors the node's drain flag, learnt with every heartbeat.
	draining atomic.Bool
	// beatEvery is the heartbeat interval in use (a time.Duration), the
	// cluster's when it asks for a longer one than HeartbeatInterval.
	beatEvery atomic.Int64
	// lastContact is when a heartbeat last went through, as nanoseconds
	// since epoch on the monotonic clock (a wall-clock step must not fence
	// tasks, nor keep them from being fenced): how long the node has been
	// cut off, for tasks that stop then (disconnect.go). fenceWake asks the
	// fence's timer to look again.
	epoch       time.Time
	lastContact atomic.Int64
	fenceWake   chan struct{}
	// asking says a heartbeat has been sent since the last one that went
	// through: only then can the agent be out of touch. Between beats it
	// has asked nothing, and in a large cluster beats are further apart
	// than a task's stop_after_disconnect.
	asking atomic.Bool
	// clockSkew is the database's clock less the agent's (a time.Duration),
	// learnt with every heartbeat (see localTime).
	clockSkew atomic.Int64
	// usage is the machine's latest measurement not yet written: the stats
	// loop leaves it here and the next heartbeat carries it (stats_loop.go).
	usage atomic.Pointer[queue.Usage]

	mu sync.Mutex
	// watched holds the leases this process is watching a container for. It
	// is a cache of what the database says; after a crash it is rebuilt from
	// the database and the containers' labels.
	watched map[queue.Lease]*watch
	// inflight holds the tasks this process is starting a container for,
	// so that a reconcile running meanwhile leaves them alone.
	inflight map[uuid.UUID]bool
	wg       sync.WaitGroup
	// removals bounds the containers being removed at once; removing
	// holds their ids, so that a reconcile does not remove one twice.
	removals chan struct{}
	removing map[string]bool

	obs    observer // stats, log shipping and metrics (observe.go and friends)
	writes *writer  // the lease writes, in batches (writes.go)
}

// watch is one container the agent follows. The flags say why it is being
// stopped, which decides what its exit means; the agent's mu guards them.
type watch struct {
	lease       queue.Lease
	containerID string
	stopping    bool   // a user asked: the task ends stopped
	evicting    bool   // the node is draining: the task moves elsewhere
	lost        bool   // the lease is gone: remove the container, write nothing
	ended       bool   // its exit is recorded: the lease is over, by the agent's own doing
	unhealthy   string // the health check failed, and why: a failure
	// disconnected says why the agent stopped the container after it lost
	// touch with the database for stopAfterDisconnect: the task moves on.
	disconnected        string
	stopAfterDisconnect time.Duration
}

// New builds an agent over a store and a container runtime.
func New(store *postgres.Store, rt Runtime, opts Options) *Agent {
	orDefault(&opts.HeartbeatInterval, DefaultHeartbeatInterval)
	orDefault(&opts.PollInterval, DefaultPollInterval)
	orDefault(&opts.IdlePollInterval, DefaultIdlePollInterval)
	orDefault(&opts.StopGrace, DefaultStopGrace)
	orDefault(&opts.MaxParallelStarts, DefaultMaxParallelStarts)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RestartBackoff == (queue.Backoff{}) {
		opts.RestartBackoff = queue.DefaultBackoff
	}
	orDefault(&opts.ReconcileInterval, DefaultReconcileInterval)
	if opts.HostMountPrefix == "" {
		opts.HostMountPrefix = DefaultHostMountPrefix
	}
	orDefault(&opts.ImageFailures, 3)
	orDefault(&opts.ImageCooloff, 30*time.Second)
	orDefault(&opts.StatsInterval, DefaultStatsInterval)
	orDefault(&opts.LogLimits.MaxLines, queue.DefaultLogLimits.MaxLines)
	orDefault(&opts.LogLimits.MaxBytes, queue.DefaultLogLimits.MaxBytes)
	orDefault(&opts.LogFlushTimeout, 5*time.Second)
	a := &Agent{store: store, rt: rt, opts: opts, log: opts.Logger.With("node", opts.Name),
		wake: make(chan struct{}, 1), watched: map[queue.Lease]*watch{}, inflight: map[uuid.UUID]bool{},
		removals: make(chan struct{}, 8), removing: map[string]bool{},
		epoch: time.Now(), fenceWake: make(chan struct{}, 1)}
	a.writes = &writer{store: store}
	a.obs.init(a)
	return a
}

// labels are the node's labels as registered: the configured ones. Whether
// the node runs privileged containers is the registration's
// AllowPrivileged: only the flag (and, for an agent with a role of its own,
// an admin) says so, never a label.
func (a *Agent) labels() map[string]string {
	out := make(map[string]string, len(a.opts.Labels))
	for k, v := range a.opts.Labels {
		out[k] = v
	}
	delete(out, queue.LabelAllowPrivileged)
	delete(out, queue.LabelAllowHostMounts)
	if a.opts.AllowHostMounts {
		out[queue.LabelAllowHostMounts] = "true"
	}
	return out
}

// Node returns the node the agent registered as (valid once Run has started it).
func (a *Agent) Node() queue.Node { return a.node }

// Register records the node in the database. Run calls it; tests may call it
// first to learn the node's id.
func (a *Agent) Register(ctx context.Context) error {
	n, err := a.store.RegisterNode(ctx, queue.NodeRegistration{
		Name: a.opts.Name, Address: a.opts.Address, Labels: a.labels(), Capacity: a.opts.Capacity,
		AllowPrivileged: a.opts.AllowPrivileged,
	})
	if errors.Is(err, queue.ErrForbidden) {
		return fmt.Errorf("registering as node %q: %w (this database role may act as another node only: orch node token %s makes the role for this one)", a.opts.Name, err, a.opts.Name)
	}
	if err != nil {
		return err
	}
	a.node = n
	a.touched()
	return nil
}

// Run registers the node, takes stock of what is already running, and then
// works until ctx ends. Containers keep running when the agent stops: a
// restarted agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	if err := retry(ctx, a.log, "registering node", a.Register); err != nil {
		return err
	}
	a.log.Info("agent registered", "id", a.node.ID, "cpu", queue.FormatCPU(a.node.Capacity.CPUMillis),
		"memory", queue.FormatBytes(a.node.Capacity.MemoryBytes), "disk", queue.FormatBytes(a.node.Capacity.DiskBytes))
	a.engine.check(ctx, a.rt)
	// Heartbeats first: taking stock may take a while after a long absence
	// (many containers to remove), and the node must not look dead meanwhile.
	var bg sync.WaitGroup
	bg.Add(4)
	go func() { defer bg.Done(); a.heartbeatLoop(ctx) }()
	go func() { defer bg.Done(); a.fenceLoop(ctx) }()
	go func() { defer bg.Done(); a.engineLoop(ctx) }()
	go func() { defer bg.Done(); a.statsLoop(ctx) }()
	if err := retry(ctx, a.log, "reconciling containers", a.reconcile); err != nil {
		bg.Wait()
		return err
	}
	now := time.Now()
	clock := reconcileClock{last: now, lastFull: now}
	a.volumesDue.Store(true)
	bg.Add(1)
	go func() {
		defer bg.Done()
		a.listen(ctx)
	}()
	for idle, why := false, "woken"; ctx.Err() == nil; idle, why = a.waitForWork(ctx) {
		a.reconcileIfDue(ctx, &clock)
		// A safety-net wake-up with nothing to ask about has no step.
		if idle {
			a.obs.metrics.skipped.Inc()
		} else {
			a.obs.metrics.steps.WithLabelValues(why).Inc()
			if err := a.Step(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("agent step failed", "err", err)
			}
		}
		if a.volumesDue.Swap(false) {
			// A failure waits for the next reconcile or wake-up.
			if err := a.syncVolumes(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("syncing volumes failed", "err", err)
			}
		}
	}
	bg.Wait()
	a.wg.Wait()
	return nil
}

func (a *Agent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Step does one round of work: let go of tasks that were moved away, carry
// out stop requests, hand tasks over if the node is draining, and otherwise
// claim newly placed tasks and start their containers (in the background, at
// most MaxParallelStarts at a time).
//
// The claim comes first: it is what a wake-up is usually for, and a task's
// create→claimed waited for the two reads before it (the node's leases and
// its stop requests), a round trip each. With one agent, the median from
// the pass's commit to the claim went from 1.7 and 2.4 ms to 1.3 and 1.0 ms
// in two pairs of runs on a loaded machine (package bench's docs). The
// reads are about other tasks (those the agent already holds), so their
// order does not matter to the claim.
func (a *Agent) Step(ctx context.Context) error {
	if a.draining.Load() {
		if err := a.checkLeases(ctx); err != nil {
			return err
		}
		if err := a.handleStops(ctx); err != nil {
			return err
		}
		a.evict(ctx)
		return nil
	}
	claimErr := a.claimPlaced(ctx)
	if err := a.checkLeases(ctx); err != nil {
		return err
	}
	if err := a.handleStops(ctx); err != nil {
		return err
	}
	return claimErr
}

// claimPlaced claims the tasks placed on the node and starts them in the
// background, as many as there are free start slots: a claimed task is this
// node's to start, and one slow start must not hold up the others. A start
// that ends wakes the loop to claim more.
func (a *Agent) claimPlaced(ctx context.Context) error {
	for {
		a.mu.Lock()
		free := a.opts.MaxParallelStarts - len(a.inflight)
		a.mu.Unlock()
		if free <= 0 {
			return nil
		}
		claim, err := a.store.Claim(ctx, a.node.ID, free)
		if err != nil {
			// The claim may have committed without the agent hearing so:
			// its tasks then wait in starting, which only a reconcile
			// resumes. Have one soon rather than at the next interval.
			a.reconcileNeeded.Store(true)
			return err
		}
		tasks := claim.Tasks
		if len(tasks) < free && claim.Left {
			// Some were held by another transaction; the notification
			// that announced them is spent.
			a.pollSoon()
		}
		if len(tasks) == 0 {
			return nil
		}
		a.obs.metrics.claims.Add(float64(len(tasks)))
		for i := range tasks {
			if !a.begin(tasks[i].ID) {
				continue
			}
			a.wg.Add(1)
			go func(t queue.Task) {
				defer a.wg.Done()
				defer a.poke()
				defer a.end(t.ID)
				a.start(ctx, t)
			}(tasks[i])
		}
	}
}

// begin marks a task as being started by this process; false means it
// already is.
func (a *Agent) begin(id uuid.UUID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight[id] {
		return false
	}
	a.inflight[id] = true
	return true
}

func (a *Agent) end(id uuid.UUID) {
	a.mu.Lock()
	delete(a.inflight, id)
	a.mu.Unlock()
}

// retry runs fn until it succeeds or ctx ends, backing off up to 5 s: the
// database or the engine may be down for a while, and the agent must outlast it.
func retry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	backoff := 200 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, queue.ErrInvalid) || errors.Is(err, queue.ErrForbidden) {
			return fmt.Errorf("%s: %w", what, err)
		}
		log.Warn(what+" failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
