package bridge

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
)

// Config configures a Bridge. Zero values mean the documented defaults.
type Config struct {
	// Upstream runs the chat session of each connection. Required.
	Upstream Upstream
	// Origins says which cross-origin pages may open a WebSocket.
	Origins Origins
	// MaxFrameBytes bounds a client message; a bigger one closes the
	// connection with 1009. It bounds the messages that join several
	// events for a tertulia.v1 client too (see Conn.WriteFrames). Default
	// hub.MaxFrameBytes (64 KiB).
	MaxFrameBytes int
	// PingInterval is how often the server pings; a connection silent
	// (no frame, no pong) for two intervals is closed. Default
	// DefaultPingInterval.
	PingInterval time.Duration
	// WriteTimeout bounds one write to a browser. Default 10s.
	WriteTimeout time.Duration
	// AuthTimeout bounds the wait for an auth frame on the authenticated
	// endpoint when the token came neither in the URL nor as a subprotocol.
	// Default 10s.
	AuthTimeout time.Duration
	// MaxTokenBytes is the longest token the upstream accepts (default
	// auth.DefaultMaxTokenBytes). It bounds the auth frame, read before
	// anyone is authenticated, to such a token and a little JSON
	// (authFrameSlack): a bigger frame closes the connection with 1009.
	MaxTokenBytes int
	// CloseTimeout bounds the closing handshake. Default 2s.
	CloseTimeout time.Duration
	// MaxHandshakeBytes and MaxHandshakeHeaders bound the request line and
	// headers of an upgrade served by Listener; a bigger one is answered
	// with 431. Defaults 8 KiB and 64 header fields.
	MaxHandshakeBytes   int
	MaxHandshakeHeaders int
	// Logger receives the bridge's logs; tokens never reach it. Default: discard.
	Logger *slog.Logger
	// Now is the clock of the bridge's own error frames. Default time.Now.
	Now func() time.Time
}

// DefaultPingInterval is how often a server pings a browser WebSocket (the
// bridge's, gRPC-Web's) unless told otherwise.
const DefaultPingInterval = 30 * time.Second

func (c Config) withDefaults() Config {
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = hub.MaxFrameBytes
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 10 * time.Second
	}
	if c.MaxTokenBytes <= 0 {
		c.MaxTokenBytes = auth.DefaultMaxTokenBytes
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 2 * time.Second
	}
	if c.MaxHandshakeBytes <= 0 {
		c.MaxHandshakeBytes = 8 << 10
	}
	if c.MaxHandshakeHeaders <= 0 {
		c.MaxHandshakeHeaders = 64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Bridge serves the WebSocket endpoints. Its methods are safe for
// concurrent use.
type Bridge struct {
	cfg Config
	log *slog.Logger

	workers *workers // run the connections' bursts of frames

	refusedHeads atomic.Int64 // upgrades refused for a head over its bounds

	mu       sync.Mutex // protects conns and shutdown
	conns    map[*Conn]struct{}
	shutdown bool
	wg       sync.WaitGroup // one per running handler
}

// New returns a bridge; mount its Handlers.
func New(cfg Config) (*Bridge, error) {
	if cfg.Upstream == nil {
		return nil, errors.New("bridge: Config.Upstream is required")
	}
	cfg = cfg.withDefaults()
	return &Bridge{cfg: cfg, log: cfg.Logger, conns: make(map[*Conn]struct{}), workers: newWorkers(maxIdleWorkers)}, nil
}

func (b *Bridge) now() time.Time { return b.cfg.Now().UTC() }

// Handlers are the bridge's endpoints by http.ServeMux pattern:
// /api/v1/ws admits guests (where the upstream allows them) and anyone
// presenting a token; /api/v1/ws/authenticated requires a token, from the
// token query parameter, a bearer.<jwt> subprotocol or a first frame
// {"type":"auth","token":"..."}.
func (b *Bridge) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		"GET " + wsPath:     http.HandlerFunc(b.serve),
		"GET " + wsAuthPath: http.HandlerFunc(b.serve),
	}
}

// serve runs one WebSocket connection from upgrade to close.
func (b *Bridge) serve(w http.ResponseWriter, r *http.Request) {
	a, rej := b.admit(requestOf(r))
	if rej != nil {
		http.Error(w, rej.reason, rej.status)
		return
	}
	up := ws.HTTPUpgrader{
		Protocol: func(p string) bool { return a.protocol != "" && p == a.protocol },
		Timeout:  b.cfg.WriteTimeout,
	}
	nc, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		// The upgrader has answered the request with an HTTP error.
		if nc != nil {
			nc.Close()
		}
		b.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	// What net/http read ahead goes into a buffer of its own, in front of
	// the connection read as every other is (inputOf: over TLS, a timeout
	// that comes with data stays out of the buffer), and its 4 KiB reader
	// goes; with nothing read ahead, the connection takes a small pooled
	// reader whenever it reads, and holds none while idle.
	rest, _ := rw.Reader.Peek(rw.Reader.Buffered())
	br := restReader(nc, rest)
	// The connection outlives this handler: returning lets net/http free
	// the request and its response buffers, and the connection's goroutine
	// starts with a small stack rather than deep in net/http's.
	b.start(nc, br, nil, a)
}

// start runs an upgraded connection; br holds what was read ahead of it,
// if anything, and head the upgrade's answer if it is still to be written.
// The session is set up on one of the bridge's workers: the goroutine that
// then waits for the browser's frames starts afresh, with a small stack
// (see Conn.Serve).
func (b *Bridge) start(nc net.Conn, br *bufio.Reader, head []byte, a admission) {
	c := newConn(b, nc, br, head)
	c.acceptLanguage, c.protocol = a.acceptLanguage, a.protocol
	if !b.track(c) {
		c.Close(StatusServiceRestart, ReasonServiceRestart)
		c.closeSocket()
		return
	}
	b.workers.run(func() { b.run(c, a) })
}

// run starts the session of an upgraded connection; finish ends it.
func (b *Bridge) run(c *Conn, a admission) {
	token := a.token
	if token == "" && a.requireToken {
		token = b.authFrame(c)
	}
	if c.CloseCode() != 0 {
		b.finish(c, nil)
		return
	}
	b.cfg.Upstream.Start(peerContext(c), token, c, func(err error) { b.finish(c, err) })
}

// finish closes the connection of a session that ended with err.
func (b *Bridge) finish(c *Conn, err error) {
	if !sessionOver(err) { // the upstream has closed c; this is a safety net
		c.Close(ws.StatusInternalServerError, "internal error")
	}
	c.Close(ws.StatusNormalClosure, "")
	c.closeSocket()
	// Why a session ended is no warning here: a restart ends every session
	// with 1012, refusals and the browser's doing are not the operator's
	// business, and where the core failed a session it said why itself
	// (grpcapi's failed). A core the remote bridge cannot reach is warned
	// of by Remote.
	if b.log.Enabled(context.Background(), slog.LevelDebug) { // not a formatted address per connection for nothing
		b.log.Debug("websocket closed", "remote", c.nc.RemoteAddr().String(), "code", int(c.CloseCode()), "err", err)
	}
	b.untrack(c) // logged first: Shutdown's return finds the lines written
}

// reasonAuthRequired is the reason of the close of a connection that sent
// no auth frame within AuthTimeout.
const reasonAuthRequired = "authentication required"

// authFrameSlack is what an auth frame may hold besides its token.
const authFrameSlack = 1 << 10

// authFrame waits for the auth frame that carries the token, and closes
// the connection with 1008 if there is none within AuthTimeout, however
// many pings come meanwhile (1009 if it is over the bound MaxTokenBytes
// sets: nobody unauthenticated makes the bridge hold more).
func (b *Bridge) authFrame(c *Conn) string {
	wait := b.cfg.AuthTimeout // for the auth frame, not for each frame
	data, err := c.readMessage(wait, time.Now().Add(wait), reasonAuthRequired, min(b.cfg.MaxTokenBytes+authFrameSlack, b.cfg.MaxFrameBytes))
	if err != nil {
		return "" // the read failure closed c: 1008 reasonAuthRequired if the wait ran out
	}
	m, err := DecodeFrame(data)
	if err != nil || m.Frame != nil || m.Token == "" {
		c.Close(ws.StatusPolicyViolation, `authentication required: send {"type":"auth","token":"..."} first`)
		return ""
	}
	return m.Token
}

// track registers c for Shutdown; false if the bridge is shutting down.
func (b *Bridge) track(c *Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shutdown {
		return false
	}
	b.conns[c] = struct{}{}
	b.wg.Add(1)
	return true
}

func (b *Bridge) untrack(c *Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	b.wg.Done()
}

// Shutdown closes every connection with 1012 "service restart", refuses
// new ones, and waits for their handlers to end or for ctx. A node ends its
// sessions first, spread over time (hub.Shutdown): what is left here are
// connections that had no session yet.
// Hijacked connections are not the HTTP server's to close: this is.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.shutdown = true
	conns := make([]*Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.Close(StatusServiceRestart, ReasonServiceRestart)
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	defer b.workers.stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxIdleWorkers bounds the workers kept waiting for bursts of frames.
const maxIdleWorkers = 256

// Conns is the number of open WebSocket connections.
func (b *Bridge) Conns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}
