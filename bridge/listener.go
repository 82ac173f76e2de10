package bridge

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Listener returns a listener for the HTTP server that serves the
// bridge's WebSocket endpoints itself. It reads the start of each
// connection's request line: a GET of /api/v1/ws or
// /api/v1/ws/authenticated is upgraded right there by gobwas/ws's
// zero-copy upgrader, with no net/http request, response or hijacked
// buffers; every other connection goes on to the HTTP server with its
// bytes intact. The endpoints behave exactly as Handlers serve them.
//
// Setting up a connection through net/http cost a third of the server's
// time when thousands connect at once (request parsing, 8 KiB of buffers
// left behind by each hijack, and the garbage collection that followed).
//
// headerTimeout bounds the wait for a request's head, as
// http.Server.ReadHeaderTimeout does. Closing the returned listener closes
// l and the connections whose request it is still reading.
//
// Over TLS (l a tls.NewListener), what the HTTP server gets is not the
// *tls.Conn but a wrapper that gives back the bytes read here, so net/http
// does not know the connection is TLS: a request's r.TLS is nil (nothing
// in the server reads it; a handler that would must not trust it), and a
// plain-HTTP request sent to the TLS port fails its TLS handshake here and
// is closed without an answer, where net/http would answer 400 "Client
// sent an HTTP request to an HTTPS server".
func (b *Bridge) Listener(l net.Listener, headerTimeout time.Duration) net.Listener {
	s := &splitListener{Listener: l, b: b, timeout: headerTimeout,
		http: make(chan net.Conn), done: make(chan struct{}), reading: make(map[net.Conn]struct{})}
	go s.acceptLoop()
	return s
}

// splitListener routes accepted connections between the bridge and the
// HTTP server that calls its Accept.
type splitListener struct {
	net.Listener
	b       *Bridge
	timeout time.Duration

	http chan net.Conn // connections for the HTTP server
	done chan struct{} // closed by Close

	mu      sync.Mutex // protects reading, err and closed
	reading map[net.Conn]struct{}
	err     error // why the accept loop ended
	closed  bool
	once    sync.Once
}

// acceptLoop accepts connections until the listener fails for good, and
// routes each on a goroutine of its own, so that a slow client holds up
// nobody. Temporary failures (out of file descriptors) are retried after a
// pause, as net/http does.
func (s *splitListener) acceptLoop() {
	var pause time.Duration
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			if isTimeout(err) || isTemporary(err) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(pause):
					continue
				case <-s.done:
				}
			}
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			s.Close()
			return
		}
		pause = 0
		if !s.track(c) {
			c.Close()
			return
		}
		go s.route(c)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Accept returns the next connection for the HTTP server.
func (s *splitListener) Accept() (net.Conn, error) {
	select {
	case c := <-s.http:
		return c, nil
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil && !errors.Is(s.err, net.ErrClosed) {
			return nil, s.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting, and closes the connections still being routed.
func (s *splitListener) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.Listener.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.reading {
			c.Close()
		}
		s.mu.Unlock()
	})
	return err
}

func (s *splitListener) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.reading[c] = struct{}{}
	return true
}

func (s *splitListener) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.reading, c)
	s.mu.Unlock()
}

// wsRequestLine is how a request for the bridge's endpoints starts; the
// byte after it must end the path or go on to "/authenticated".
const wsRequestLine = "GET " + wsPath

// route reads the start of c's request line and hands c to the bridge or
// to the HTTP server.
func (s *splitListener) route(c net.Conn) {
	defer s.untrack(c) // a second untrack is harmless
	c.SetReadDeadline(time.Now().Add(s.timeout))
	// The buffer the head of an upgrade is read into: reading it whole
	// from the first read on saves a read per connection.
	buf := headBuffers.Get().(*[headChunk]byte)
	defer headBuffers.Put(buf)
	head := buf[:max(len(wsRequestLine)+1, min(headChunk, s.b.cfg.MaxHandshakeBytes))]
	n, err := readPrefix(c, head)
	if err != nil && n == 0 {
		c.Close() // nothing to serve: gone, or silent until the timeout
		return
	}
	if isWSRequest(head[:n]) {
		// The bridge's once its head is read: closing the listener closes a
		// connection whose head is still coming, but must not cut one being
		// upgraded (its browser would read the end of the stream, not 1012).
		s.b.handshake(c, head[:n], s.untrack)
		return
	}
	c.SetReadDeadline(time.Time{}) // the HTTP server sets its own
	// A copy: the connection may live long, its buffer need not.
	pc := &prefixConn{Conn: c, prefix: append([]byte(nil), head[:n]...)}
	select {
	case s.http <- pc:
	case <-s.done:
		c.Close()
	}
}

// readPrefix reads into p until it holds as much as isWSRequest looks at
// (p is longer: a read takes what the client has sent), the bytes read
// can no longer start a WebSocket request, or reading fails.
func readPrefix(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(wsRequestLine)+1 {
		m, err := c.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
		if k := min(n, len(wsRequestLine)); string(p[:k]) != wsRequestLine[:k] {
			return n, nil
		}
	}
	return n, nil
}

// isWSRequest reports whether a request starting with head asks for one
// of the bridge's endpoints.
func isWSRequest(head []byte) bool {
	return len(head) > len(wsRequestLine) && string(head[:len(wsRequestLine)]) == wsRequestLine &&
		strings.IndexByte(" ?/", head[len(wsRequestLine)]) >= 0
}

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// upgrade reads the handshake of a request for the bridge's endpoints on
// c and performs it if admit lets it in. A refused request gets an HTTP
// error. br, if not nil, holds what the client sent after the request
// (see restReader): the connection reads it first.
//
// When the request carries a token the session opens at once, and its
// welcome is the first frame: the answer is then held back to go out in
// the same write (see Conn.head).
func (b *Bridge) upgrade(c *prefixConn, br *bufio.Reader) {
	var (
		req upgradeRequest
		a   admission
		w   = &headWriter{prefixConn: c, timeout: b.cfg.WriteTimeout}
	)
	u := ws.Upgrader{
		ReadBufferSize: 2 << 10, // the request's head; the browser sends nothing more before the answer
		OnRequest: func(uri []byte) error {
			ru, err := url.ParseRequestURI(string(uri))
			if err != nil {
				return ws.RejectConnectionError(ws.RejectionStatus(http.StatusBadRequest), ws.RejectionReason("bad request URI"))
			}
			req.path, req.query = ru.Path, ru.Query()
			return nil
		},
		OnHost: func(h []byte) error { req.host = string(h); return nil },
		OnHeader: func(key, value []byte) error {
			switch {
			case strings.EqualFold(string(key), "Origin"):
				req.origin = string(value)
			case strings.EqualFold(string(key), "Accept-Language"):
				req.acceptLanguage = string(value)
			}
			return nil
		},
		// Every Sec-WebSocket-Protocol header is kept for admit, which
		// chooses the one to echo.
		ProtocolCustom: func(header []byte) (string, bool) {
			req.protocols = append(req.protocols, string(header))
			return "", true
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			var rej *rejection
			if a, rej = b.admit(req); rej != nil {
				return nil, ws.RejectConnectionError(ws.RejectionStatus(rej.status), ws.RejectionReason(rej.reason))
			}
			w.hold = a.token != ""
			if a.protocol == "" {
				return nil, nil
			}
			return protocolHeader, nil // a.protocol is Subprotocol
		},
	}
	if _, err := u.Upgrade(w); err != nil {
		// The upgrader has answered with an HTTP error where it could.
		b.log.Debug("websocket upgrade refused", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	// The connection sets its own deadlines before it reads or writes.
	var head []byte
	if w.hold {
		head = w.held
	}
	b.start(c.Conn, br, head, a)
}

// protocolHeader is the header line that echoes Subprotocol, written as
// it is rather than built from an http.Header for every upgrade.
var protocolHeader = ws.HandshakeHeaderString("Sec-WebSocket-Protocol: " + Subprotocol + "\r\n")

// headWriter is the connection an upgrade answers on: once hold is set,
// what is written is kept in held instead. What it writes, it writes
// within timeout: the deadline is set only then, as the connection sets
// its own before it writes a held answer.
type headWriter struct {
	*prefixConn
	timeout time.Duration
	hold    bool
	held    []byte
}

func (w *headWriter) Write(p []byte) (int, error) {
	if !w.hold {
		w.SetWriteDeadline(time.Now().Add(w.timeout))
		return w.prefixConn.Write(p)
	}
	w.held = append(w.held, p...)
	return len(p), nil
}
