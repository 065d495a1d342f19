package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pingIdleAfter is how long a pooled connection may sit idle before the
// pool pings it ahead of its next use.
//
// pgxpool's default pings any connection idle for more than a second
// before handing it out. An agent's connections are used every couple of
// seconds, so by default every heartbeat was two round trips, the ping and
// the UPDATE, and every wake-up path (the agent's claim after a
// notification, the coordinator's pass after a quiet spell) started with a
// ping. A connection that died meanwhile still fails its query and the pool
// replaces it; the agent retries its writes and beats again two seconds
// later, and the coordinator's loop runs again. A connection quiet for
// longer (long enough for a NAT or a firewall to have forgotten it) is
// still pinged first.
const pingIdleAfter = time.Minute

func pingAfterIdle(_ context.Context, p pgxpool.ShouldPingParams) bool {
	return p.IdleDuration > pingIdleAfter
}

// OpenConns is how many connections the store's pool holds now.
func (s *Store) OpenConns() int { return int(s.pool.Stat().TotalConns()) }
