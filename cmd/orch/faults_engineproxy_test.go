package main

import (
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// engineProxy is a unix socket that forwards to the real Docker engine
// until it is told to refuse: then it drops every open connection (the
// agent's waits on its containers break) and closes new ones at once, like
// an engine that went away. Pointing one agent's DOCKER_HOST at it makes
// that agent's engine fail while the containers themselves run on.
type engineProxy struct {
	t      *testing.T
	ln     net.Listener
	sock   string
	dial   func() (net.Conn, error)
	mu     sync.Mutex
	refuse bool
	conns  map[net.Conn]bool
}

func newEngineProxy(t *testing.T) *engineProxy {
	t.Helper()
	network, addr := "unix", "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		u, err := url.Parse(h)
		if err != nil {
			t.Fatalf("DOCKER_HOST %q: %v", h, err)
		}
		switch u.Scheme {
		case "unix":
			addr = u.Path
		case "tcp":
			network, addr = "tcp", u.Host
		default:
			t.Skipf("cannot proxy DOCKER_HOST %q", h)
		}
	}
	dir, err := os.MkdirTemp("", "orch-engine-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &engineProxy{t: t, sock: filepath.Join(dir, "docker.sock"), conns: map[net.Conn]bool{},
		dial: func() (net.Conn, error) { return net.Dial(network, addr) }}
	if p.ln, err = net.Listen("unix", p.sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ln.Close(); p.setRefusing(true) })
	go p.serve()
	return p
}

// dockerHost is the DOCKER_HOST value that points at the proxy.
func (p *engineProxy) dockerHost() string { return "unix://" + p.sock }

func (p *engineProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			in.Close()
			continue
		}
		out, err := p.dial()
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in, out) {
			in.Close()
			out.Close()
			continue
		}
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *engineProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse {
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *engineProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src) // a dropped connection is the point of this proxy
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// setRefusing switches the engine off (true: every connection is dropped)
// or on again.
func (p *engineProxy) setRefusing(on bool) {
	p.mu.Lock()
	p.refuse = on
	var drop []net.Conn
	if on {
		for c := range p.conns {
			drop = append(drop, c)
		}
		p.conns = map[net.Conn]bool{}
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.Close()
	}
}
