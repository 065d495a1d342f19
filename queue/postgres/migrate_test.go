package postgres

import (
	"context"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orchd/orch/queue/postgres/pgtest"
	orchsql "github.com/orchd/orch/sql"
)

// embeddedMigrations lists the migration files, in version order.
func embeddedMigrations(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(orchsql.Migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no embedded migrations")
	}
	slices.Sort(names)
	return names
}

func checkAllApplied(t *testing.T, ctx context.Context, url string, want []string) {
	t.Helper()
	st, err := MigrationStatus(ctx, url)
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	var got []string
	for i, s := range st {
		got = append(got, s.Source)
		if !s.Applied || s.AppliedAt.IsZero() {
			t.Errorf("%s: applied=%v at %v, want applied", s.Source, s.Applied, s.AppliedAt)
		}
		if s.Version <= 0 || (i > 0 && s.Version <= st[i-1].Version) {
			t.Errorf("%s: version %d out of order", s.Source, s.Version)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("status lists %v, want %v", got, want)
	}
}

func TestMigrateUpFreshThenNoop(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := embeddedMigrations(t)
	url := pgtest.NewEmpty(t)

	st, err := MigrationStatus(ctx, url)
	if err != nil {
		t.Fatalf("MigrationStatus on a fresh database: %v", err)
	}
	if len(st) != len(want) {
		t.Fatalf("status lists %d migrations, want %d", len(st), len(want))
	}
	for _, s := range st {
		if s.Applied || !s.AppliedAt.IsZero() {
			t.Errorf("fresh database: %s reported applied", s.Source)
		}
	}

	applied, err := MigrateUp(ctx, url)
	if err != nil {
		t.Fatalf("MigrateUp: %v", err)
	}
	if !slices.Equal(applied, want) {
		t.Errorf("first MigrateUp applied %v, want %v", applied, want)
	}

	applied, err = MigrateUp(ctx, url)
	if err != nil {
		t.Fatalf("second MigrateUp: %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("second MigrateUp applied %v, want none", applied)
	}
	checkAllApplied(t, ctx, url, want)
}

func TestMigrateUpConcurrent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	want := embeddedMigrations(t)
	url := pgtest.NewEmpty(t)

	const n = 3
	var (
		wg      sync.WaitGroup
		applied [n][]string
		errs    [n]error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = MigrateUp(ctx, url)
		}()
	}
	wg.Wait()
	var all []string
	for i := range n {
		if errs[i] != nil {
			t.Errorf("MigrateUp #%d: %v", i, errs[i])
		}
		all = append(all, applied[i]...)
	}
	// Each migration ran exactly once, whoever ran it.
	slices.Sort(all)
	if !slices.Equal(all, want) {
		t.Errorf("together the calls applied %v, want each of %v once", all, want)
	}
	checkAllApplied(t, ctx, url, want)
}

// pgtest.New hands out databases cloned from the migrated template.
func TestPgtestNewIsMigrated(t *testing.T) {
	t.Parallel()
	want := embeddedMigrations(t)
	for range 3 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			url := pgtest.New(t)
			checkAllApplied(t, ctx, url, want)
			applied, err := MigrateUp(ctx, url)
			if err != nil || len(applied) != 0 {
				t.Errorf("MigrateUp on a pgtest database applied %v, %v; want nothing", applied, err)
			}
		})
	}
}
