package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Notification is one notification heard: its channel and payload. The
// zero Notification (no channel) says the connection is back after a break,
// during which whatever was sent was lost.
type Notification struct {
	Channel, Payload string
}

// Listen holds one connection LISTENing on channels and calls wake for every
// notification until ctx ends. Notifications are only a hint to look at the
// tables sooner: when the connection drops, Listen reconnects with backoff and
// calls wake with the zero Notification once it is back, because whatever
// was sent meanwhile is lost. Callers keep polling as the fallback.
func (s *Store) Listen(ctx context.Context, channels []string, wake func(Notification)) {
	s.ListenStatus(ctx, channels, wake, nil)
}

// ListenStatus is Listen that also reports the connection's health to up
// (when not nil): up(true) once every channel is listened on, up(false) when
// the connection is lost. While it is up no notification can be missed, so
// a caller may poll rarely then and often only while it is down.
//
// Through a transaction pooler a LISTEN hears nothing (Pooled): it then
// reports the connection down once and waits for ctx, and the caller polls.
func (s *Store) ListenStatus(ctx context.Context, channels []string, wake func(Notification), up func(bool)) {
	if up == nil {
		up = func(bool) {}
	}
	if s.Pooled() {
		up(false)
		<-ctx.Done()
		return
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, channels, wake, func() { backoff = 100 * time.Millisecond; up(true) })
		up(false)
		if ctx.Err() != nil {
			return
		}
		_ = err // the caller's poll covers the gap; retry quietly
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, channels []string, wake func(Notification), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	connected()
	wake(Notification{})
	for {
		n, err := waitNotification(ctx, conn)
		if err != nil {
			return err
		}
		if n != nil {
			wake(Notification{Channel: n.Channel, Payload: n.Payload})
		}
	}
}

// listenCheck is how long a listening connection may stay quiet before it
// is pinged. A connection that died without a word (a NAT that forgot it, a
// peer that vanished) would otherwise look healthy for as long as TCP takes
// to notice, and callers trust a healthy listener to poll rarely.
const listenCheck = 30 * time.Second

// waitNotification waits for the next notification, or returns nil after
// listenCheck once a ping has shown the connection is alive.
func waitNotification(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	wctx, cancel := context.WithTimeout(ctx, listenCheck)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return n, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		return nil, err
	}
	return nil, nil
}
