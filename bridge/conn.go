package bridge

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws/wsutil"
)

// Conn is one browser WebSocket, after the upgrade: reading (read.go),
// writing (write.go) and closing (close.go). Its frames are read by one
// goroutine at a time (Serve, recv); WriteFrames, Close and the ping timer may run
// concurrently with it and with each other. Only the handler that owns a
// Conn calls closeSocket, once, last.
type Conn struct {
	b  *Bridge
	nc net.Conn
	// br is the read buffer, held only while there is something to read
	// (bytes, or an error a TLS connection holds) or a frame is being
	// read; at first, one that holds what was read ahead of the upgrade,
	// if anything (the hijacked connection's reader, or a restReader).
	br  *bufio.Reader
	raw syscall.RawConn // nc's socket, for waitReadable; nil where there is none
	// tc is nc if it is a TLS connection, which may hold input its socket
	// no longer shows (see takeHeld).
	tc *tls.Conn
	// rd reads the frames while a burst is read, from br; like br, it is
	// pooled and held only then (see readFrame), which keeps 192 bytes off
	// each idle connection.
	rd   *wsutil.Reader
	ping *time.Timer

	readMu sync.Mutex // one reader at a time, and closeSocket waits for it

	mu     sync.Mutex // protects writes to nc and the fields below
	closed bool       // a close frame was sent (or the connection is gone)
	// deadline is the write deadline last set on nc. Setting it costs a
	// timer update, so writes refresh it only once half of it has passed:
	// a write stuck on a browser that reads nothing still fails within
	// WriteTimeout, and at least WriteTimeout/2 after it started.
	deadline time.Time
	// head is the upgrade's answer, held back so that it goes out in one
	// write with the first frame (the welcome) rather than in a write of
	// its own; nil once it is out. The ping timer sends it alone if no
	// frame comes within headHold.
	head      []byte
	headTimer bool // the ping timer's next run is for head

	closing atomic.Bool // set before closed, without mu, so readers stop early
	code    atomic.Uint32

	// acceptLanguage is the handshake's Accept-Language header, which
	// picks the language of the session's texts when its token names none.
	acceptLanguage string
	// protocol is the negotiated subprotocol, Subprotocol or "": with it,
	// events written together share a WebSocket frame (see WriteFrames).
	protocol string
}

// Errors the reading returns once the connection is over.
var (
	// ErrClosed: the bridge or the server closed the connection.
	ErrClosed = errors.New("websocket closed")
	// errPeerClosed: the browser closed the connection (a close frame or EOF).
	errPeerClosed = errors.New("websocket closed by peer")
)

// newConn returns the connection of nc, whose hijacked reader br may hold
// bytes already (nil if none), and whose upgrade answer head is still to be
// written (nil if it was).
func newConn(b *Bridge, nc net.Conn, br *bufio.Reader, head []byte) *Conn {
	c := &Conn{b: b, nc: nc, br: br, head: head}
	c.raw, c.tc = socketOf(nc)
	// The TLS handshake's reads may have taken the first frames off the
	// socket already (see takeHeld).
	if c.tc != nil && c.br == nil && !c.takeHeld() {
		c.releaseReaders()
	}
	// The first wait for the browser's frames is bounded from now: the
	// goroutine that waits never arms a deadline itself (see awaitBytes).
	nc.SetReadDeadline(time.Now().Add(c.idleTimeout()))
	first := b.cfg.PingInterval
	if head != nil && first > headHold {
		first, c.headTimer = headHold, true
	}
	c.ping = time.AfterFunc(first, c.sendPing)
	return c
}

// headHold bounds how long the upgrade's answer waits for the first frame
// to go out with: a session slow to open delays it no longer than this.
const headHold = 500 * time.Millisecond

// sessionOver reports whether err only says that the connection is over,
// by either side's doing.
func sessionOver(err error) bool {
	return err == nil || errors.Is(err, errPeerClosed) || errors.Is(err, ErrClosed)
}
