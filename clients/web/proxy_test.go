package web_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy forwards TCP connections to a backend address, so that a test can
// cut every connection through it, as a dropped network would, and keep the
// network down for a while: pages connect through it to a node that stays
// up, keeping its history.
type proxy struct {
	l       net.Listener
	backend string

	mu    sync.Mutex // protects down and conns
	down  bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup // the accept loop and the pipes
}

// startProxy forwards a free loopback port to backend until the test ends.
func startProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, backend: backend, conns: make(map[net.Conn]bool)}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		l.Close()
		p.cut(false)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[b] = true, true
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(c, b) })
		p.wg.Go(func() { p.pipe(b, c) })
	}
}

// pipe copies from src to dst; when either side ends, both close.
func (p *proxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut closes every connection through the proxy; with down, new ones are
// refused until up.
func (p *proxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for c := range p.conns {
		c.Close()
	}
}

// up lets connections through again.
func (p *proxy) up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
