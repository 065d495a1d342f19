package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Riding out a failover. When the primary dies and a standby is promoted
// (or a server restarts), every pooled connection breaks, and until the new
// primary accepts writes every new one fails: the old host refuses, and a
// multi-host URL with target_session_attrs=read-write turns down the standby
// while it is read-only. pgxpool replaces broken connections by itself; what
// the store adds is that a call which failed only because the database was
// away is made again, with backoff, within its deadline — when that is safe:
//
//   - a read is always safe to repeat;
//   - a transaction whose COMMIT was never sent did not commit (the server
//     rolls back a transaction whose connection is gone), so inTx runs it
//     again; one whose COMMIT was sent and whose answer was lost may have
//     committed, and is repeated only when the write is idempotent;
//   - a create is repeated whatever happened: its id is fixed before the
//     first try, and a later try that finds the id taken by a task of the
//     same spec takes it as its own (createTasks, behind CreateTask,
//     CreateTasks and their Submit forms).
//
// A call so retried waits for the switch instead of failing: with a
// failover manager that promotes within a few seconds, API callers see a
// slow answer, not an error.

// retryBackoff is the first wait between tries; it doubles up to
// retryBackoffMax.
const (
	retryBackoff    = 50 * time.Millisecond
	retryBackoffMax = time.Second
)

// transient reports whether err says only that the database was away: the
// connection broke or could not be made, the server is shutting down or
// starting, or the session turned out to be read-only (a standby, or a
// primary being demoted). It says nothing about the call itself.
func transient(err error) bool {
	var amb commitUnknown
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &amb) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "25006", // read_only_sql_transaction: a standby, or a demoted primary
			"57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"57P03": // cannot_connect_now: starting up, or in recovery
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "conn closed")
}

// retry runs fn, and again with backoff for as long as it fails only because
// the database is away (transient) and ctx has time left. fn must be safe
// to repeat: a read, or an idempotent write. Every such failure is noted
// (LastAway), also when a later try succeeds.
func (s *Store) retry(ctx context.Context, fn func(context.Context) error) error {
	wait := retryBackoff
	for {
		err := fn(ctx)
		if err == nil || !transient(err) {
			return err
		}
		s.lastAway.Store(time.Now().UnixNano())
		if ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, retryBackoffMax)
	}
}

// LastAway is when a call of this store last failed because the database
// was away, zero if never; a call the store retried until it went through
// counts. A caller that must not judge others by a silence the database
// caused (the coordinators' node sweeper) counts from here, since a retried
// call hides the outage from it.
func (s *Store) LastAway() time.Time {
	ns := s.lastAway.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
