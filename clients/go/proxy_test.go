package client_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// gate stops one direction of a proxy's connections: shut, the bytes
// read stay in the proxy, and those behind them in the sockets' buffers,
// as with a peer that stops reading; open, they flow again.
type gate struct {
	mu     sync.Mutex // held while a write passes, and while shut
	isShut atomic.Bool
	passed atomic.Int64 // bytes that went through
}

// shut stops the bytes once the write under way, if any, has passed. Only
// the test's goroutine shuts and opens.
func (g *gate) shut() {
	g.mu.Lock()
	g.isShut.Store(true)
}

func (g *gate) open() {
	if g.isShut.Swap(false) {
		g.mu.Unlock()
	}
}

// proxy forwards TCP connections to a target, the client's bytes through
// up and the server's through down, until drop.
type proxy struct {
	l        net.Listener
	up, down gate
	wg       sync.WaitGroup
	mu       sync.Mutex // protects conns
	conns    []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Go(func() { pipe(u, c, &p.up) })
			p.wg.Go(func() { pipe(c, u, &p.down) })
		}
	})
	t.Cleanup(func() {
		p.up.open()
		p.down.open()
		p.drop()
		p.wg.Wait()
	})
	return p
}

// drop cuts every connection, as a network that fails does, and refuses
// new ones.
func (p *proxy) drop() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// pipe copies src to dst through g, and closes both when either ends.
func pipe(dst, src net.Conn, g *gate) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			g.mu.Lock()
			_, werr := dst.Write(buf[:n])
			g.mu.Unlock()
			g.passed.Add(int64(n))
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
