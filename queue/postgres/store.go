package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orchd/orch/queue"
)

// Store is a handle on orch's database. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	obs    observability // settings of the stats writers (stats.go)
	pooler Pooler        // what stands between the store and PostgreSQL (pooler.go)
	// lastAway is when a call last failed because the database was away,
	// in Unix nanoseconds (retry.go).
	lastAway atomic.Int64
}

// Open connects to the database at url, directly (see OpenWith for a
// pooler). It does not migrate.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenWith(ctx, url, Options{})
}

// OpenConfig connects with a prepared pool configuration.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config) (*Store, error) {
	if cfg.ShouldPing == nil {
		cfg.ShouldPing = pingAfterIdle
	}
	cfg.ConnConfig.DialFunc = dialer().DialContext
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pinging postgres: %w", err)
	}
	return nil
}

// errIDTaken is a conflict on a task's id, which SubmitTask looks into.
var errIDTaken = fmt.Errorf("a task with this id exists: %w", queue.ErrConflict)

// errNameTaken is a conflict on a live task's name (sql/00030_task_names.sql).
var errNameTaken = fmt.Errorf("a live task has this name: %w", queue.ErrConflict)

// translate turns driver errors into the queue's sentinels, in one place.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, queue.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			switch pgErr.ConstraintName {
			case "tasks_pkey":
				return fmt.Errorf("%s: %w: %s", what, errIDTaken, pgErr.Detail)
			case "tasks_live_name_key":
				return fmt.Errorf("%s: %w: %s", what, errNameTaken, pgErr.Detail)
			}
			return fmt.Errorf("%s: %w: %s", what, queue.ErrConflict, pgErr.Detail)
		case "23503", "23514", "22P02", "22001", "22021": // fk, check, bad text repr, too long, bad encoding
			return fmt.Errorf("%s: %w: %s", what, queue.ErrInvalid, pgErr.Message)
		case "42501": // insufficient_privilege, row-level security included
			return fmt.Errorf("%s: %w: %s", what, queue.ErrForbidden, pgErr.Message)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// retryable reports whether a transaction failed only because it raced
// another one and may simply be run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return false
}

// inTx runs fn in a transaction, retrying when Postgres aborted it only
// because of a race (serialization failure or deadlock), and, within the
// call's deadline, when the database was away before the transaction asked
// to commit (retry.go): such a transaction did not commit, whatever fn did.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.inTxWith(ctx, pgx.TxOptions{}, fn)
}

// inTxWith is inTx beginning the transaction with opts: a BeginQuery that
// also sets what the transaction needs (SET LOCAL ...) saves a round trip
// for each setting.
func (s *Store) inTxWith(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	races := 0
	return s.retry(ctx, func(ctx context.Context) error {
		for {
			committing, err := s.tryTx(ctx, opts, fn)
			if err != nil && committing && !pgconn.SafeToRetry(err) {
				// The COMMIT may have gone through: not ours to repeat.
				return commitUnknown{err}
			}
			if err == nil || !retryable(err) || races >= 5 {
				return err
			}
			races++
		}
	})
}

// tryTx runs fn in one transaction and commits it; committing says the
// error, if any, came from the COMMIT.
func (s *Store) tryTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) (committing bool, err error) {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op once committed
	if err := fn(tx); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// commitUnknown is an error from a COMMIT whose outcome is unknown: the
// connection broke after it was sent. It unwraps to the cause but is not
// transient, so retry does not repeat it.
type commitUnknown struct{ err error }

func (a commitUnknown) Error() string { return "commit outcome unknown: " + a.err.Error() }
func (a commitUnknown) Unwrap() error { return a.err }
