package postgres

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	orchsql "github.com/orchd/orch/sql"
)

// MigrationState is one embedded migration and whether the database has it.
type MigrationState struct {
	Version   int64
	Source    string // file name, e.g. "00001_init.sql"
	Applied   bool
	AppliedAt time.Time // zero unless Applied
}

// MigrateUp applies the pending embedded migrations to the database at
// databaseURL and returns the file names of those it applied, in order (none
// when the schema is current).
//
// It holds a Postgres session advisory lock (goose's, so a hand-run `goose`
// CLI is serialized too) for the whole run: coordinators starting at once
// take turns and all but the first find nothing to do.
func MigrateUp(ctx context.Context, databaseURL string) (applied []string, err error) {
	err = withGoose(databaseURL, "migrate", func(p *goose.Provider) error {
		applied, err = migrateUp(ctx, p)
		return err
	})
	return applied, err
}

func migrateUp(ctx context.Context, p *goose.Provider) (applied []string, err error) {
	// Up first asks HasPending, which creates goose's version table without
	// taking the lock, so that racing callers collide on CREATE TABLE (goose
	// retries, but only three times). Status takes the lock and creates the
	// table under it; the provider does not try again afterwards.
	if _, err := p.Status(ctx); err != nil {
		return nil, fmt.Errorf("migrate up: %w", err)
	}
	results, err := p.Up(ctx)
	for _, r := range results {
		if r.Error == nil {
			applied = append(applied, path.Base(r.Source.Path))
		}
	}
	if err != nil {
		return applied, fmt.Errorf("migrate up: %w", err)
	}
	return applied, nil
}

// MigrationStatus lists every embedded migration, in version order, with
// whether and when it was applied to the database at databaseURL.
func MigrationStatus(ctx context.Context, databaseURL string) (out []MigrationState, err error) {
	err = withGoose(databaseURL, "migration status", func(p *goose.Provider) error {
		out, err = migrationStatus(ctx, p)
		return err
	})
	return out, err
}

func migrationStatus(ctx context.Context, p *goose.Provider) ([]MigrationState, error) {
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]MigrationState, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationState{
			Version:   s.Source.Version,
			Source:    path.Base(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// withGoose runs fn with a goose provider for databaseURL (gooseProvider)
// and closes it; what names the step in the error of the close.
func withGoose(databaseURL, what string, fn func(p *goose.Provider) error) (err error) {
	p, err := gooseProvider(databaseURL)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := p.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: close: %w", what, cerr)
		}
	}()
	return fn(p)
}

// gooseProvider opens databaseURL with database/sql (goose needs it) and
// returns a goose provider over the embedded migrations. Closing the provider
// closes the database.
func gooseProvider(databaseURL string) (*goose.Provider, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("migrate: parse database URL: %w", err)
	}
	// Retry every second for up to five minutes (goose's default is every
	// five seconds), so that the losers of a startup race wait little.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	p, err := goose.NewProvider(goose.DialectPostgres, db, orchsql.Migrations,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		// Migrations are numbered in blocks by subject (00020s jobs), so a
		// database may have a later block applied before an earlier one lands.
		goose.WithAllowOutofOrder(true),
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return p, nil
}
