package node

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/tertulia/tertulia/server/grpcapi"
)

// capPerAddress returns l with at most max connections open at once from
// any one client address (Limits.ConnsPerIP, on the gRPC port): a
// connection over it is closed as soon as it is accepted, before grpc-go
// sets up a transport for it (three goroutines and about 18 KiB, held
// until the idle timeout), and counted in refused. A TCP connection
// carries any number of sessions, so no client needs more of them than
// sessions. Everyone is counted, loopback too: a bridge beside the node
// opens one connection whatever the browsers behind it, and the node's
// own gateway one. A connection is counted until it is closed. max <= 0:
// l itself.
func capPerAddress(l net.Listener, max int, refused *atomic.Int64) net.Listener {
	if max <= 0 {
		return l
	}
	return &capListener{Listener: l, max: max, refused: refused, open: make(map[netip.Addr]int)}
}

type capListener struct {
	net.Listener
	max     int
	refused *atomic.Int64

	mu   sync.Mutex // protects open
	open map[netip.Addr]int
}

// Accept returns the next connection within the cap, closing those over it.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		from, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			return c, nil // not an IP peer: nothing to count it against
		}
		addr := from.Addr().Unmap()
		if l.admit(addr) {
			// grpc-go sets TCP_USER_TIMEOUT only on a *net.TCPConn,
			// which the wrapper hides from it: set it here.
			keepUserTimeout(c, grpcapi.KeepaliveTimeout)
			return &cappedConn{Conn: c, release: func() { l.release(addr) }}, nil
		}
		l.refused.Add(1)
		c.Close()
	}
}

func (l *capListener) admit(addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr] >= l.max {
		return false
	}
	l.open[addr]++
	return true
}

func (l *capListener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr]--; l.open[addr] <= 0 {
		delete(l.open, addr)
	}
}

// cappedConn gives its address's place back when it is first closed.
type cappedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *cappedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
