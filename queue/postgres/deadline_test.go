//go:build linux

package postgres

import (
	"context"
	"net"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/orchd/orch/queue/postgres/pgtest"
)

// Every connection the store opens notices a silent peer: keepalives on,
// and (on Linux) a user timeout for data the peer never acknowledges.
func TestStore_Connections_HaveKeepalivesAndAUserTimeout(t *testing.T) {
	t.Parallel()
	_, viaTCP := pgtest.NewProxy(t, pgtest.New(t))
	s, err := Open(context.Background(), viaTCP)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := s.pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tcp, ok := conn.Conn().PgConn().Conn().(*net.TCPConn)
	if !ok {
		t.Fatalf("the connection is a %T, want TCP", conn.Conn().PgConn().Conn())
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var keepalive, idle, user int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		if keepalive, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE); gerr != nil {
			return
		}
		if idle, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); gerr != nil {
			return
		}
		user, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if keepalive != 1 || idle != int(keepAliveIdle.Seconds()) || user != int(userTimeout.Milliseconds()) {
		t.Errorf("keepalive %d, idle %d s, user timeout %d ms; want 1, %v, %v", keepalive, idle, user, keepAliveIdle, userTimeout)
	}
}
