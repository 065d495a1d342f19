package pgtest

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a database until it is cut: then every
// connection through it is closed and new ones are refused, as for a node
// whose way to the database is gone. Restore opens it again on the same
// address.
//
// Blackhole is the silent kind of partition: connections stay open and new
// ones are accepted, but nothing is forwarded either way, as when a
// firewall or a broken link drops packets instead of refusing them. No
// error ever reaches either side; only a deadline tells. Restore lets the
// held bytes through again, as TCP's retransmissions would after the link
// heals.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	held  bool
	open  *sync.Cond // signalled when held turns false
	// loseReply, when set, is the marker of the request whose answer the
	// proxy loses (LoseReplyTo).
	loseReply []byte
	lostCount int
}

// NewProxy proxies the database of dbURL and returns the proxy and the URL
// that goes through it. The proxy is cut when the test ends.
func NewProxy(t testing.TB, dbURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: u.Host, conns: map[net.Conn]bool{}}
	p.open = sync.NewCond(&p.mu)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	u.Host = p.addr
	return p, u.String()
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *Proxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	var lost atomic.Bool // this connection's answers are being lost
	go func() {
		_, _ = io.Copy(gate{p, s, func(b []byte) { p.maybeLose(b, &lost, c, s) }, nil}, c)
		s.Close()
	}()
	_, _ = io.Copy(gate{p, c, nil, &lost}, s)
	c.Close()
}

// maybeLose arms the loss of the answers on a connection whose request
// carries the marker LoseReplyTo waits for: the request goes through (and
// commits), the answer never comes back, and the connection breaks soon
// after, as when a server restarts or a link fails right after a commit.
func (p *Proxy) maybeLose(b []byte, lost *atomic.Bool, c, s net.Conn) {
	p.mu.Lock()
	marker := p.loseReply
	hit := marker != nil && bytes.Contains(b, marker)
	if hit {
		p.loseReply = nil
		p.lostCount++
	}
	p.mu.Unlock()
	if !hit {
		return
	}
	lost.Store(true)
	time.AfterFunc(300*time.Millisecond, func() { c.Close(); s.Close() })
}

// Lost is how many answers the proxy has lost (LoseReplyTo).
func (p *Proxy) Lost() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lostCount
}

// LoseReplyTo makes the proxy lose the answer to the next request that
// carries marker (e.g. a parameter value of the statement), once: the
// client cannot tell whether its write committed. It did.
func (p *Proxy) LoseReplyTo(marker []byte) {
	p.mu.Lock()
	p.loseReply = marker
	p.mu.Unlock()
}

// gate writes to w unless the proxy holds traffic: then it waits. seen, if
// set, looks at what passes; lost, if set and true, swallows it.
type gate struct {
	p    *Proxy
	w    io.Writer
	seen func([]byte)
	lost *atomic.Bool
}

func (g gate) Write(b []byte) (int, error) {
	g.p.mu.Lock()
	for g.p.held {
		g.p.open.Wait()
	}
	g.p.mu.Unlock()
	if g.seen != nil {
		g.seen(b) // before the request goes on: its answer must not slip through
	}
	if g.lost != nil && g.lost.Load() {
		return len(b), nil
	}
	return g.w.Write(b)
}

// Blackhole stops forwarding without closing anything (see Proxy).
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

// Cut closes the listener and every connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = false
	p.open.Broadcast()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore ends a black hole, or listens again on the proxy's address after
// a cut.
func (p *Proxy) Restore() {
	p.t.Helper()
	p.mu.Lock()
	wasHeld, listening := p.held, p.ln != nil
	p.held = false
	p.open.Broadcast()
	p.mu.Unlock()
	if wasHeld && listening {
		return
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("listening again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}
