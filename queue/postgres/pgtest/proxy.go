package pgtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
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
	go func() { _, _ = io.Copy(gate{p, s}, c); s.Close() }()
	_, _ = io.Copy(gate{p, c}, s)
	c.Close()
}

// gate writes to w unless the proxy holds traffic: then it waits.
type gate struct {
	p *Proxy
	w io.Writer
}

func (g gate) Write(b []byte) (int, error) {
	g.p.mu.Lock()
	for g.p.held {
		g.p.open.Wait()
	}
	g.p.mu.Unlock()
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
