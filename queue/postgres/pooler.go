package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orchd/orch/queue"
)

// Pooler names what stands between orch and PostgreSQL.
type Pooler string

const (
	// NoPooler: orch connects to PostgreSQL itself (or through a pooler in
	// session mode, which is the same to it).
	NoPooler Pooler = ""
	// TransactionPooler: a pooler in transaction mode, such as PgBouncer
	// with pool_mode = transaction, hands each transaction whichever
	// server connection is free. A fleet of thousands of agents then holds
	// as many server processes as the pool has, not three each. Two things
	// do not survive it: prepared statements (named ones live on one server
	// connection; PgBouncer 1.18 cannot follow them) and LISTEN (the server
	// connection is gone after the LISTEN). orch then sends every statement
	// with its parameters' types described and cached by the client
	// (pgx's cache_describe mode: unnamed statements, one round trip), and
	// does not LISTEN through it: agents hear of their work from the
	// coordinators instead (they long-poll them; package coordinator), and
	// a coordinator LISTENs on a connection of its own, straight to
	// PostgreSQL, when it has one (--listen-database-url).
	TransactionPooler Pooler = "transaction"
)

// ParsePooler reads the --database-pooler setting.
func ParsePooler(s string) (Pooler, error) {
	switch Pooler(s) {
	case NoPooler, TransactionPooler:
		return Pooler(s), nil
	}
	return "", queue.Invalid("database-pooler", fmt.Sprintf("unknown pooler mode %q", s),
		"give transaction for PgBouncer's pool_mode = transaction, or leave it out for a direct connection")
}

// Options are how Open connects beyond the URL.
type Options struct {
	// Pooler says what stands between orch and PostgreSQL.
	Pooler Pooler
	// MaxConns bounds the connections of the store's pool (0: pgx's
	// default, at least 4).
	MaxConns int
}

// OpenWith connects to the database at url as opts say.
func OpenWith(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: database URL: %v", queue.ErrInvalid, err)
	}
	if opts.Pooler == TransactionPooler {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(opts.MaxConns)
	}
	s, err := OpenConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.pooler = opts.Pooler
	return s, nil
}

// Pooled reports whether the store goes through a transaction pooler, and
// so cannot LISTEN.
func (s *Store) Pooled() bool { return s.pooler == TransactionPooler }
