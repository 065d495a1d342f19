package postgres

import "context"

// asyncCommitCTE, referenced in a statement's FROM list, makes that
// statement's transaction commit without waiting for its WAL to be flushed
// (synchronous_commit off for this transaction only; set_config with
// is_local). The WAL writer flushes it within a few hundred milliseconds,
// batched with everything else.
//
// It is for writes that are repeated anyway and idempotent, such as
// heartbeats: should the server crash in that window, the write is lost
// and the next one makes up for it, and nothing else is at risk (a commit
// is never reordered, and every other transaction still waits for its own
// flush). Skipping the flush is what makes a thousand agents' heartbeats
// cheap: otherwise each one is a WAL flush, hundreds a second.
const asyncCommitCTE = `async_commit AS (SELECT set_config('synchronous_commit', 'off', true))`

// wakeAsync notifies channel in a transaction of its own that commits
// asynchronously. A transaction that notifies holds a database-wide lock
// from before its commit until after it, WAL flush included, so that
// notifications are queued in commit order; every notifying commit thus
// waits for the previous one's flush, and writes that notify lose group
// commit. Creating tasks that way was capped at one per WAL flush. Sent
// separately, after the write has committed (and so when there is
// something to see), the notification holds that lock for microseconds.
// It is a hint: should it be lost, the schedulers' periodic pass finds the
// work anyway, so errors are ignored.
func (s *Store) wakeAsync(ctx context.Context, channel string) {
	_, _ = s.pool.Exec(ctx, `WITH `+asyncCommitCTE+` SELECT pg_notify($1, '') FROM async_commit`, channel)
}
