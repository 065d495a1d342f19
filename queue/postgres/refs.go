package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// hexRef is what may be part of a task id as a user copies it: hex digits
// and hyphens, at least four.
var hexRef = regexp.MustCompile(`^[0-9a-f][0-9a-f-]{3,35}$`)

// refMatch is a task (or job) a reference could mean.
type refMatch struct {
	ID    uuid.UUID
	Name  string
	State string // a task's state, a job's status
}

// maxRefMatches bounds the matches an ambiguous reference lists.
const maxRefMatches = 10

// ResolveTask finds the task a user means by ref, as Docker finds a
// container: a full id; else a name (its live task, or when none of that
// name is live the newest); else a unique start of the id (as it is
// written, with or without its hyphens) or end of it (the twelve digits the
// status page prints). A reference that fits several tasks is invalid
// input that lists them; one that fits none is not found.
func (s *Store) ResolveTask(ctx context.Context, ref string) (uuid.UUID, error) {
	ref = strings.TrimSpace(ref)
	if id, err := uuid.Parse(ref); err == nil {
		return id, nil
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	byName, err := s.refMatches(ctx, byNameSQL, ref, maxRefMatches+1)
	if err != nil {
		return uuid.Nil, err
	}
	var live []refMatch
	for _, m := range byName {
		if queue.State(m.State).Live() {
			live = append(live, m)
		}
	}
	switch {
	case len(live) > 1: // a job's old and new task during an update
		return uuid.Nil, ambiguous("task", ref, live)
	case len(byName) > 0:
		return byName[0].ID, nil
	}
	if !hexRef.MatchString(strings.ToLower(ref)) {
		return uuid.Nil, fmt.Errorf("task %q: %w: no task has this name or id", ref, queue.ErrNotFound)
	}
	ref = strings.ToLower(ref)
	var byID []refMatch
	if lo, hi, ok := prefixRange(ref); ok {
		// A start of the id: a range of the primary key's index.
		if byID, err = s.refMatches(ctx, `SELECT id, name, state FROM tasks WHERE id BETWEEN $1 AND $2 ORDER BY id LIMIT $3`,
			lo, hi, maxRefMatches+1); err != nil {
			return uuid.Nil, err
		}
	}
	if len(byID) == 0 {
		// An end of the id: the short id (twelve digits) through its index
		// (sql/00031), any other length by reading every id.
		q := `SELECT id, name, state FROM tasks WHERE right(id::text, length($1)) = $1 ORDER BY id LIMIT $2`
		if len(ref) == 12 {
			q = `SELECT id, name, state FROM tasks WHERE right(id::text, 12) = $1 ORDER BY id LIMIT $2`
		}
		if byID, err = s.refMatches(ctx, q, ref, maxRefMatches+1); err != nil {
			return uuid.Nil, err
		}
	}
	switch len(byID) {
	case 0:
		return uuid.Nil, fmt.Errorf("task %q: %w: no task has this name or id", ref, queue.ErrNotFound)
	case 1:
		return byID[0].ID, nil
	}
	return uuid.Nil, ambiguous("task", ref, byID)
}

// byNameSQL finds the tasks named $1, live ones first, then the newest, in
// the three indexes that hold names between them (sql/00055): a name a task
// was created without (task-<short id>) through the short id's index, the
// other names of live tasks not of a job through tasks_live_name_key, and
// the rest (finished tasks, a job's tasks) through tasks_name_idx. Each arm
// repeats its index's predicate so that the planner can use it.
const byNameSQL = `
SELECT id, name, state FROM (
    SELECT id, name, state, created_at FROM tasks
    WHERE right(id::text, 12) = right($1, 12) AND name = $1 AND name = 'task-' || right(id::text, 12)
    UNION ALL
    SELECT id, name, state, created_at FROM tasks
    WHERE name = $1 AND job_id IS NULL AND state IN ('pending', 'scheduled', 'starting', 'running')
      AND name <> 'task-' || right(id::text, 12)
    UNION ALL
    SELECT id, name, state, created_at FROM tasks
    WHERE name = $1 AND name <> 'task-' || right(id::text, 12)
      AND (job_id IS NOT NULL OR state IN ('completed', 'failed', 'stopped'))
) m
ORDER BY state IN ('pending', 'scheduled', 'starting', 'running') DESC, created_at DESC, id DESC LIMIT $2`

func (s *Store) refMatches(ctx context.Context, q string, args ...any) ([]refMatch, error) {
	return queryAll(ctx, s, "looking up", scanRefMatch,
		q, args...)
}

// ambiguous is the error for a reference that fits several tasks (what:
// "task") or jobs.
func ambiguous(what, ref string, ms []refMatch) error {
	var b strings.Builder
	for i, m := range ms {
		if i == maxRefMatches {
			b.WriteString("; and more")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %s (%s)", m.ID, m.Name, m.State)
	}
	n := fmt.Sprint(len(ms))
	if len(ms) > maxRefMatches {
		n = fmt.Sprintf("more than %d", maxRefMatches)
	}
	return queue.Invalid("id", fmt.Sprintf("%q could mean %s %ss: %s", ref, n, what, b.String()),
		"give more of the id, or the whole id")
}

// prefixRange is the range of ids that start with ref, written with or
// without hyphens.
func prefixRange(ref string) (lo, hi uuid.UUID, ok bool) {
	digits := ref
	if strings.Contains(ref, "-") {
		// Hyphens must sit where a UUID has them.
		const shape = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
		for i := range len(ref) {
			if (ref[i] == '-') != (shape[i] == '-') {
				return lo, hi, false
			}
		}
		digits = strings.ReplaceAll(ref, "-", "")
	}
	if len(digits) >= 32 {
		return lo, hi, false
	}
	lo, err1 := uuid.Parse(digits + strings.Repeat("0", 32-len(digits)))
	hi, err2 := uuid.Parse(digits + strings.Repeat("f", 32-len(digits)))
	return lo, hi, err1 == nil && err2 == nil
}

// ResolveJob returns the name of the job a user means by ref: a job's name,
// else its id, or a unique start or end of it (jobs are addressed by name,
// which ResolveJob returns as it is when nothing else fits, for the caller
// to find or not). A reference that fits several jobs is invalid input
// that lists them.
func (s *Store) ResolveJob(ctx context.Context, ref string) (string, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs WHERE name = $1)`, ref).Scan(&exists); err != nil {
		return "", translate(err, "looking up job")
	}
	low := strings.ToLower(strings.TrimSpace(ref))
	if exists || !hexRef.MatchString(low) {
		return ref, nil
	}
	var ms []refMatch
	var err error
	if id, perr := uuid.Parse(low); perr == nil {
		ms, err = s.refMatches(ctx, `SELECT id, name, status FROM jobs WHERE id = $1`, id)
	} else if lo, hi, ok := prefixRange(low); ok {
		ms, err = s.refMatches(ctx, `SELECT id, name, status FROM jobs WHERE id BETWEEN $1 AND $2 ORDER BY id LIMIT $3`, lo, hi, maxRefMatches+1)
	}
	if err == nil && len(ms) == 0 {
		ms, err = s.refMatches(ctx, `SELECT id, name, status FROM jobs WHERE right(id::text, length($1)) = $1 ORDER BY id LIMIT $2`, low, maxRefMatches+1)
	}
	switch {
	case err != nil:
		return "", err
	case len(ms) == 0:
		return ref, nil
	case len(ms) == 1:
		return ms[0].Name, nil
	}
	return "", ambiguous("job", ref, ms)
}

// scanRefMatch scans a candidate of a lookup: id, name and state.
func scanRefMatch(r pgx.Row) (refMatch, error) {
	var m refMatch
	err := r.Scan(&m.ID, &m.Name, &m.State)
	return m, err
}
