package testkit

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// dialTimeout bounds a Proxy's dial to one backend, so a backend that is
// gone costs a connection little before the next one is tried.
const dialTimeout = time.Second

// Proxy forwards TCP connections from a loopback port to the first of its
// backends that accepts one, as a load balancer whose health check took
// dead backends out would. A test cuts it to break the network between a
// client and its servers, and restores it to mend it.
type Proxy struct {
	ln       net.Listener
	backends []string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// StartProxy listens on 127.0.0.1 and forwards to backends (host:port),
// until the test ends.
func StartProxy(t testing.TB, backends ...string) *Proxy {
	t.Helper()
	if len(backends) == 0 {
		t.Fatal("testkit: a proxy needs at least one backend")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, backends: backends, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection through the proxy and refuses new ones (they
// are accepted and closed at once) until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore lets new connections through again after Cut.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Open is the number of connections the proxy forwards now (each pair of
// client and backend connections counts once).
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

func (p *Proxy) serve() {
	for {
		front, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(front)
	}
}

func (p *Proxy) forward(front net.Conn) {
	defer front.Close()
	back := p.dial()
	if back == nil {
		return
	}
	defer back.Close()
	if !p.track(front, back) {
		return
	}
	defer p.untrack(front, back)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(back, front); done <- struct{}{} }()
	go func() { _, _ = io.Copy(front, back); done <- struct{}{} }()
	<-done // one side gone: drop both, as a balancer does
}

// dial connects to the first backend that accepts, or returns nil when
// the proxy is cut or none does.
func (p *Proxy) dial() net.Conn {
	for _, addr := range p.backends {
		if p.isCut() {
			return nil
		}
		if c, err := net.DialTimeout("tcp", addr, dialTimeout); err == nil {
			return c
		}
	}
	return nil
}

func (p *Proxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// track records a forwarded pair, unless the proxy was cut meanwhile.
func (p *Proxy) track(front, back net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[front], p.conns[back] = struct{}{}, struct{}{}
	return true
}

func (p *Proxy) untrack(front, back net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, front)
	delete(p.conns, back)
}
