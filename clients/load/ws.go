package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// Subprotocol is the bridge's WebSocket subprotocol (bridge.Subprotocol,
// not imported: the tool is a client and needs none of the server's code;
// a test keeps the two equal): a client that offers it may get several
// events in one frame.
const Subprotocol = "tertulia.v1"

// wsReadBuffer is each own-client connection's read buffer: a frame that
// fits is read in place, without a copy.
const wsReadBuffer = 4 << 10

// wsDialer opens WebSocket connections to the bridge with the tool's own
// client. The set-up is shaped so that the tool costs less per connection
// than the server it measures: the dialing goroutine itself does the
// handshake, writes the join and reads the frames up to its room_joined (no
// goroutine is woken for it), with deadlines on the socket rather than
// goroutines watching a context; only then does the connection get its one
// reader goroutine. Frames are classified by scanning their bytes, not
// decoded, so that one core reads a million of them a second.
type wsDialer struct {
	httpAddr string
	tokens   func(user string) (string, error)
	upgrader ws.Dialer // only its Upgrade: the TCP dial is nd's
	nd       net.Dialer
	tls      *tls.Config // wss: TLS over the TCP connection; nil for ws
}

var _ dialer = (*wsDialer)(nil)

func newWSDialer(httpAddr string, tokens func(string) (string, error), offerProtocol bool) *wsDialer {
	d := &wsDialer{httpAddr: httpAddr, tokens: tokens}
	d.upgrader.ReadBufferSize, d.upgrader.WriteBufferSize = wsReadBuffer, 1<<10
	if offerProtocol {
		d.upgrader.Protocols = []string{Subprotocol}
	}
	// No TCP keep-alive: five setsockopt calls a connection saved, and the
	// connections live for a run, not for hours.
	d.nd.KeepAlive = -1
	return d
}

// overTLS makes d dial wss if on (Config.TLS), and returns d.
func (d *wsDialer) overTLS(on bool) *wsDialer {
	if on {
		// A load test's server has a throwaway certificate; the tool
		// measures it, and sends it nothing secret.
		d.tls = &tls.Config{InsecureSkipVerify: true}
	}
	return d
}

func (d *wsDialer) name() string { return "ws" }

// wsURL is the bridge's WebSocket URL for user: with a token in the query,
// or the guest endpoint for "".
func wsURL(httpAddr, user string, tokens func(user string) (string, error)) (*url.URL, error) {
	u := &url.URL{Scheme: "ws", Host: httpAddr, Path: "/api/v1/ws"}
	if user == "" {
		return u, nil
	}
	tok, err := tokens(user)
	if err != nil {
		return nil, err
	}
	u.Path += "/authenticated"
	u.RawQuery = "token=" + url.QueryEscape(tok)
	return u, nil
}

// dialError is err from dialing u, with u's token (in its query) taken out
// of the text: errors reach logs and reports, tokens must not.
func dialError(err error, u *url.URL) error {
	msg := err.Error()
	if u.RawQuery != "" {
		msg = strings.ReplaceAll(msg, u.RawQuery, "token=REDACTED")
	}
	return errors.New("websocket dial: " + msg)
}

// aLongTimeAgo is a deadline that makes blocked socket calls return at once.
var aLongTimeAgo = time.Unix(1, 0)

func (d *wsDialer) dial(ctx context.Context, user, room, joinID string, m *member) (conn, error) {
	u, err := wsURL(d.httpAddr, user, d.tokens)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok { // a set-up has its own bound, a lone dial this one
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dialTimeout)
		defer cancel()
	}
	nc, err := d.nd.DialContext(ctx, "tcp", d.httpAddr)
	if err != nil {
		return nil, dialError(err, u)
	}
	if d.tls != nil { // the handshake runs in the upgrade's first write, under its deadline
		nc = tls.Client(nc, d.tls)
	}
	c := &wsConn{nc: nc, mask: ws.NewMask(), done: make(chan struct{})}
	if err := c.setUp(ctx, d, u, room, joinID, m); err != nil {
		nc.Close()
		return nil, err
	}
	go c.read(m)
	return c, nil
}

// setUp upgrades the connection, joins room and reads until the welcome and
// the join's room_joined have come, within dialTimeout and ctx.
func (c *wsConn) setUp(ctx context.Context, d *wsDialer, u *url.URL, room, joinID string, m *member) error {
	c.nc.SetDeadline(time.Now().Add(dialTimeout))
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	br, _, err := d.upgrader.Upgrade(c.nc, u)
	if err != nil {
		stop()
		return dialError(err, u)
	}
	if br == nil {
		br = bufio.NewReaderSize(c.nc, wsReadBuffer)
	}
	c.br = br
	if room != "" {
		if err := c.join(room, joinID); err != nil {
			stop()
			return fmt.Errorf("join %s: %w", room, err)
		}
	}
	for first := true; !m.isReady; {
		data, err := c.readFrame(m, first)
		if err != nil {
			stop()
			return fmt.Errorf("set-up: %w", err)
		}
		first = first && !data
	}
	if !stop() { // ctx ended: the deadline is (about to be) in the past
		return context.Cause(ctx)
	}
	if m.setupErr != nil {
		return m.setupErr
	}
	return c.nc.SetDeadline(time.Time{})
}

type wsConn struct {
	nc   net.Conn
	br   *bufio.Reader
	mask [4]byte
	buf  []byte // a frame too large for br, or fragmented, put together
	done chan struct{}

	closed atomic.Bool

	wmu  sync.Mutex // protects wbuf and writes to nc
	wbuf []byte
}

// errClosedByServer is how a connection the server closed ends.
var errClosedByServer = errors.New("closed by server")

// readFrame reads one frame and hands a text frame's events to m (first:
// whether it is the connection's first, its welcome); data says whether it
// was one. A frame that fits in the read buffer, as every event does, is
// read in place; control frames are answered.
func (c *wsConn) readFrame(m *member, first bool) (data bool, err error) {
	h, err := ws.ReadHeader(c.br)
	if err != nil {
		return false, err
	}
	if h.Length > 1<<20 {
		return false, fmt.Errorf("server frame of %d bytes", h.Length)
	}
	n := int(h.Length)
	if h.Fin && h.OpCode == ws.OpText && !h.Masked && n <= c.br.Size() {
		p, err := c.br.Peek(n)
		if err != nil {
			return false, err
		}
		scanFrame(m, p, first, time.Now())
		_, err = c.br.Discard(n)
		return true, err
	}
	start := len(c.buf) // after the fragments so far
	c.buf = append(c.buf, make([]byte, n)...)
	p := c.buf[start:]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return false, err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	switch h.OpCode {
	case ws.OpClose:
		if c.closed.Load() { // the answer to the tool's close
			return false, errClosedByServer
		}
		code, reason := ws.ParseCloseFrameData(p)
		c.writeFrame(ws.OpClose, p) // echo, as the protocol asks when the server closes first
		return false, fmt.Errorf("%w: %d %s", errClosedByServer, code, reason)
	case ws.OpPing:
		err := c.writeFrame(ws.OpPong, p)
		c.buf = c.buf[:start]
		return false, err
	case ws.OpPong:
		c.buf = c.buf[:start]
		return false, nil
	}
	if !h.Fin {
		return false, nil // more fragments follow
	}
	scanFrame(m, c.buf, first, time.Now())
	c.buf = c.buf[:0]
	return true, nil
}

func (c *wsConn) read(m *member) {
	defer close(c.done)
	for {
		if _, err := c.readFrame(m, false); err != nil {
			c.end(m, err)
			return
		}
	}
}

func (c *wsConn) end(m *member, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (c.closed.Load() && errors.Is(err, errClosedByServer)) {
		err = nil
	}
	m.onEnd(err, c.closed.Load())
	c.nc.Close()
}

// maxHeader is the largest client frame header: frames are built in wbuf
// after that many reserved bytes, and the header is put just before them,
// so that a frame takes one buffer, one write and no allocation.
const maxHeader = 14

// writeFrame sends one masked client frame in one write.
func (c *wsConn) writeFrame(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(c.reserve(), p...)
	return c.writeInPlace(op)
}

// reserve empties wbuf but for maxHeader bytes. wmu must be held.
func (c *wsConn) reserve() []byte { return append(c.wbuf[:0], make([]byte, maxHeader)...) }

// writeInPlace frames the payload wbuf holds after maxHeader reserved bytes,
// masks it and writes it. wmu must be held.
func (c *wsConn) writeInPlace(op ws.OpCode) error {
	var hb [maxHeader]byte
	h := appendFrameHeader(hb[:0], op, len(c.wbuf)-maxHeader, c.mask)
	start := maxHeader - len(h)
	copy(c.wbuf[start:], h)
	ws.Cipher(c.wbuf[maxHeader:], c.mask, 0)
	_, err := c.nc.Write(c.wbuf[start:])
	return err
}

// appendFrameHeader appends the header of a final, masked client frame of n
// payload bytes (RFC 6455 section 5.2).
func appendFrameHeader(b []byte, op ws.OpCode, n int, mask [4]byte) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, mask[:]...)
}

// joinFrame appends the join_room frame for room with id.
func joinFrame(b []byte, room, id string) []byte {
	b = append(b, `{"type":"join_room","room":`...)
	b = appendJSONString(b, room)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, id)
	return append(b, '}')
}

// messageFrame appends the message frame carrying payload to room ("" for
// the lobby). Payloads are the tool's own (digits and dots), so they need
// no escaping.
func messageFrame(b []byte, room string, payload []byte) []byte {
	b = append(b, `{"type":"message",`...)
	if room != "" {
		b = append(b, `"room":`...)
		b = appendJSONString(b, room)
		b = append(b, ',')
	}
	b = append(b, `"message":"`...)
	b = append(b, payload...)
	return append(b, `"}`...)
}

func (c *wsConn) join(room, id string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = joinFrame(c.reserve(), room, id)
	return c.writeInPlace(ws.OpText)
}

func (c *wsConn) send(room string, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = messageFrame(c.reserve(), room, payload)
	return c.writeInPlace(ws.OpText)
}

func (c *wsConn) close() {
	if c.closed.CompareAndSwap(false, true) {
		c.writeFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
		// The server answers the close and ends the connection; do not wait
		// on it for long.
		c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	}
	<-c.done
}
