package postgres

import (
	"context"
	"net"
	"time"
)

// Every call to the database has a deadline, and every connection notices a
// silent peer. A partition that drops packets (rather than refusing them)
// sends no error: without a deadline a query waits for as long as the
// kernel retransmits, minutes, and whatever waits on it — a heartbeat, a
// fenced write, a scheduling pass — waits too.

// DefaultCallTimeout bounds one call to the store (one query, one batch or
// one transaction) when the caller's context has no earlier deadline.
const DefaultCallTimeout = 30 * time.Second

// deadline bounds ctx by the store's call timeout.
func (s *Store) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, DefaultCallTimeout)
}

// TCP settings of every connection: keepalive probes after 15 s of quiet,
// every 5 s, 3 unanswered ones closing the connection; and a user timeout
// (Linux) so that data sent but not acknowledged for 30 s fails the
// connection instead of being retransmitted for a quarter of an hour.
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
	userTimeout       = 30 * time.Second
)

// dialer is how the store connects: with keepalives and a user timeout.
func dialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 10 * time.Second,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
		},
		Control: setUserTimeout,
	}
}
