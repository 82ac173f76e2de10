package bridge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// Conn is one browser WebSocket, after the upgrade. Recv is called by one
// goroutine at a time; WriteFrames, Close and the ping timer may run
// concurrently with it and with each other. Only the handler that owns a
// Conn calls release, once, last.
type Conn struct {
	b    *Bridge
	nc   net.Conn
	br   *bufio.Reader   // the hijacked connection's reader: it may hold bytes already
	raw  syscall.RawConn // nc's socket, for waitReadable; nil where there is none
	peek [1]byte
	rd   wsutil.Reader
	ping *time.Timer

	readMu sync.Mutex // one reader at a time, and release waits for it

	mu     sync.Mutex // protects writes to nc and the fields below
	closed bool       // a close frame was sent (or the connection is gone)
	// deadline is the write deadline last set on nc. Setting it costs a
	// timer update, so writes refresh it only once half of it has passed:
	// a write stuck on a browser that reads nothing still fails within
	// WriteTimeout, and at least WriteTimeout/2 after it started.
	deadline time.Time

	closing atomic.Bool // set before closed, without mu, so readers stop early
	code    atomic.Uint32

	// welcomed is closed by the first write: the session's welcome. The
	// bridge's own frames wait for it, so that a browser's first frame is
	// always the welcome, even when its first frame is refused at once.
	welcomed    chan struct{}
	welcomeOnce sync.Once

	// acceptLanguage is the handshake's Accept-Language header, which
	// picks the language of the session's texts when its token names none.
	acceptLanguage string
}

// Errors Recv returns once the connection is over.
var (
	// ErrClosed: the bridge or the server closed the connection.
	ErrClosed = errors.New("websocket closed")
	// errPeerClosed: the browser closed the connection (a close frame or EOF).
	errPeerClosed = errors.New("websocket closed by peer")
)

func newConn(b *Bridge, nc net.Conn, br *bufio.Reader) *Conn {
	c := &Conn{b: b, nc: nc, br: br, raw: rawConnOf(nc), welcomed: make(chan struct{})}
	c.rd = wsutil.Reader{
		State:          ws.StateServerSide,
		CheckUTF8:      true,
		MaxMessageSize: int64(b.cfg.MaxFrameBytes),
		OnIntermediate: c.control,
	}
	if br != nil {
		c.rd.Source = br
	}
	c.ping = time.AfterFunc(b.cfg.PingInterval, c.sendPing)
	return c
}

// sendPing keeps the connection alive through proxies and lets a silent
// peer be noticed: the browser answers with a pong, which Recv counts as
// life. It runs on the timer, so an idle connection holds no goroutine.
func (c *Conn) sendPing() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.armWrite()
	_, err := c.nc.Write(pingFrame)
	c.mu.Unlock()
	if err == nil {
		c.ping.Reset(c.b.cfg.PingInterval)
	}
}

// armWrite makes sure a write deadline at least WriteTimeout/2 away is set.
// The caller holds mu.
func (c *Conn) armWrite() {
	now := time.Now()
	if c.deadline.Sub(now) < c.b.cfg.WriteTimeout/2 {
		c.deadline = now.Add(c.b.cfg.WriteTimeout)
		c.nc.SetWriteDeadline(c.deadline)
	}
}

// pingFrame is an empty, unmasked ping (RFC 6455 5.5.2).
var pingFrame = []byte{0x80 | byte(ws.OpPing), 0}

// WriteFrames sends frames as text messages in one socket write. It is the
// hub's writer (in-process) or the upstream reader (remote) that calls it.
func (c *Conn) WriteFrames(frames [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	n := 0
	for _, f := range frames {
		n += ws.MaxHeaderSize + len(f)
	}
	bp := writeBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	if cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	for _, f := range frames {
		buf = appendHeader(buf, ws.OpText, len(f))
		buf = append(buf, f...)
	}
	c.armWrite()
	_, err := c.nc.Write(buf)
	if cap(buf) <= maxPooledBuffer {
		*bp = buf[:0]
		writeBuffers.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("write websocket: %w", err)
	}
	c.welcomeOnce.Do(func() { close(c.welcomed) })
	return nil
}

// writeBuffers hold batches while they are written. They are shared by all
// connections, so an idle connection holds no write buffer at all and a busy
// one does not allocate a batch each time.
var writeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBuffer is the largest batch buffer kept for reuse.
const maxPooledBuffer = 256 << 10

// appendHeader appends an unmasked, final frame header (RFC 6455 5.2).
func appendHeader(b []byte, op ws.OpCode, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return append(b, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// writeFrame sends one server frame, such as an error answering a bad
// client frame.
func (c *Conn) writeFrame(f *chatv1.ServerFrame) error {
	b, err := EncodeFrame(f)
	if err != nil {
		return err
	}
	return c.WriteFrames([][]byte{b})
}

// Close tells the browser why the connection ends with a close frame and
// stops sending. It does not wait for the browser, and only the first call
// counts. A write stuck on a browser that does not read is cut short.
func (c *Conn) Close(code ws.StatusCode, reason string) {
	if c.closing.Swap(true) {
		return
	}
	c.code.Store(uint32(code))
	c.ping.Stop()
	// A writer blocked on a full socket holds mu: make it give up soon.
	c.nc.SetWriteDeadline(time.Now().Add(c.b.cfg.CloseTimeout))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if len(reason) > ws.MaxControlFramePayloadSize-2 {
		reason = reason[:ws.MaxControlFramePayloadSize-2]
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.b.cfg.CloseTimeout))
	ws.WriteFrame(c.nc, ws.NewCloseFrame(ws.NewCloseFrameBody(code, reason)))
	// Half-close: the browser reads the close frame, then EOF, and answers;
	// closing outright could reset the connection and lose the close frame
	// when unread bytes are still on our side.
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	// Whoever is reading gets the browser's answer, or gives up soon.
	c.nc.SetReadDeadline(time.Now().Add(c.b.cfg.CloseTimeout))
}

// CloseCode is the code the connection was closed with, 0 while it is open.
func (c *Conn) CloseCode() ws.StatusCode { return ws.StatusCode(c.code.Load()) }

// release waits for a reader still running, drains what the browser still
// sends for a moment so that closing does not reset the connection, and
// closes the socket. The owner calls it once, after Close.
func (c *Conn) release() {
	c.ping.Stop()
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.nc.SetReadDeadline(time.Now().Add(c.b.cfg.CloseTimeout))
	var rest io.Reader = c.nc
	if c.br != nil {
		rest = c.br
	}
	io.Copy(io.Discard, io.LimitReader(rest, drainLimit))
	c.nc.Close()
}

// drainLimit bounds what release reads from a browser that keeps sending.
const drainLimit = 1 << 20

// Recv returns the next chat frame from the browser. Bad frames (invalid
// JSON, unknown types) are answered with an error frame and skipped; control
// frames are handled. It returns an error once the connection is over, after
// closing it with the fitting code when the browser broke a rule (1009 for a
// frame over the size limit).
func (c *Conn) Recv() (*chatv1.ClientFrame, error) { return c.recv(c.refuse) }

// recv is Recv handing the frames it cannot map to refuse.
func (c *Conn) recv(refuse func(*FrameError)) (*chatv1.ClientFrame, error) {
	for {
		data, err := c.readMessage(c.idleTimeout())
		if err != nil {
			return nil, err
		}
		if f := c.clientFrame(data, refuse); f != nil {
			return f, nil
		}
	}
}

// Serve hands the browser's chat frames to handle, and the frames it
// cannot map to refuse, in order, until the connection is over, and returns
// why, as Recv does. Refusals go through the caller so that they queue
// behind the answers to the frames before them.
//
// Between bursts of frames the calling goroutine only waits for the socket
// to become readable, a few calls deep; the frames are read, decoded and
// handled by one of the bridge's workers (see workers). Handling a
// frame grows a goroutine's stack to 8 KiB, which a parked goroutine keeps:
// this way an idle connection holds one goroutine with a small stack, and
// no read buffer.
func (c *Conn) Serve(handle func(*chatv1.ClientFrame), refuse func(*FrameError)) error {
	burst := func() error { return c.burst(handle, refuse) }
	for {
		if err := c.awaitBytes(); err != nil {
			return err
		}
		if err := c.b.workers.do(burst); err != nil {
			return err
		}
	}
}

// burst reads and handles the frames that have arrived: at least one, and
// then as many as are already buffered.
func (c *Conn) burst(handle func(*chatv1.ClientFrame), refuse func(*FrameError)) error {
	for {
		data, more, err := c.readFrame(c.idleTimeout())
		if err != nil {
			return err
		}
		if data != nil {
			if f := c.clientFrame(data, refuse); f != nil {
				handle(f)
			}
		}
		if !more {
			return nil
		}
	}
}

func (c *Conn) idleTimeout() time.Duration { return 2 * c.b.cfg.PingInterval }

// clientFrame decodes a chat frame, or hands one that cannot be carried
// out to refuse and returns nil.
func (c *Conn) clientFrame(data []byte, refuse func(*FrameError)) *chatv1.ClientFrame {
	m, err := DecodeFrame(data)
	var fe *FrameError
	switch {
	case errors.As(err, &fe):
		refuse(fe)
		return nil
	case m.Frame == nil:
		refuse(frameError("", CodeAlreadyAuthenticated, "this connection is already authenticated"))
		return nil
	}
	return m.Frame
}

// refuse answers a frame the bridge could not map, writing the error
// straight to the browser. The connection goes on.
// Before the session's welcome is out there is nothing to answer to yet.
func (c *Conn) refuse(fe *FrameError) {
	select {
	case <-c.welcomed:
	case <-time.After(c.b.cfg.WriteTimeout):
		return
	}
	c.writeFrame(ErrorFrame(c.b.now(), fe.ID, fe.Code, fe.Message))
}

// readMessage returns the payload of the next data message, waiting at
// most idle for each frame.
func (c *Conn) readMessage(idle time.Duration) ([]byte, error) {
	for {
		data, _, err := c.readFrame(idle)
		if err != nil || data != nil {
			return data, err
		}
	}
}

// awaitBytes waits until the browser has sent something, the connection
// has been silent for too long (it is then closed) or it is closing.
func (c *Conn) awaitBytes() error {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if err := c.armRead(c.idleTimeout()); err != nil {
		return err
	}
	if c.raw == nil || c.br != nil && c.br.Buffered() > 0 {
		return nil
	}
	if err := waitReadable(c.raw, &c.peek); err != nil {
		return c.readFailed(err)
	}
	return nil
}

// armRead sets the read deadline idle from now, or the closing handshake's
// if the connection is closing; ErrClosed if it is.
func (c *Conn) armRead(idle time.Duration) error {
	if c.closing.Load() {
		return ErrClosed
	}
	c.nc.SetReadDeadline(time.Now().Add(idle))
	if c.closing.Load() { // Close may have set a shorter deadline meanwhile
		c.nc.SetReadDeadline(time.Now().Add(c.b.cfg.CloseTimeout))
	}
	return nil
}

// readFrame reads one frame, waiting at most idle for it, and returns the
// payload of a data message (nil for a control frame, which it handles) and
// whether more bytes are buffered. A data message is read whole, with the
// frames that continue it. The read buffer is let go whenever it is empty.
func (c *Conn) readFrame(idle time.Duration) (data []byte, more bool, err error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if err := c.armRead(idle); err != nil {
		return nil, false, err
	}
	if c.br == nil {
		c.br = readers.Get().(*bufio.Reader)
		c.br.Reset(c.nc)
		c.rd.Source = c.br
	}
	defer func() {
		if more = c.br.Buffered() > 0; !more && err == nil {
			if c.br.Size() == readBufferSize { // not the hijacked one
				c.br.Reset(nil)
				readers.Put(c.br)
			}
			c.br, c.rd.Source = nil, nil
		}
	}()
	h, err := c.rd.NextFrame()
	if err != nil {
		return nil, false, c.readFailed(err)
	}
	if h.OpCode.IsControl() {
		return nil, false, c.control(h, &c.rd)
	}
	// The limit on the whole message is the reader's; this only sizes the
	// buffer, never beyond what the limit allows.
	data, err = io.ReadAll(&c.rd)
	if err != nil {
		return nil, false, c.readFailed(err)
	}
	return data, false, nil
}

// readers are the read buffers of connections that are reading a frame.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// readBufferSize is the read buffer of a connection; bigger frames are read
// through it in pieces.
const readBufferSize = 1 << 10

// readFailed closes the connection with the code the failure calls for and
// returns the error Recv reports.
func (c *Conn) readFailed(err error) error {
	switch {
	case errors.Is(err, wsutil.ErrMessageTooLarge), errors.Is(err, wsutil.ErrFrameTooLarge):
		c.Close(ws.StatusMessageTooBig, fmt.Sprintf("frame larger than %d bytes", c.b.cfg.MaxFrameBytes))
	case errors.Is(err, wsutil.ErrInvalidUTF8):
		c.Close(ws.StatusInvalidFramePayloadData, "text frame is not valid UTF-8")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), c.closing.Load():
		// The browser went away, or we are closing and it answered.
		c.Close(ws.StatusNormalClosure, "")
		return errPeerClosed
	case isTimeout(err):
		c.Close(ws.StatusPolicyViolation, "no frame or pong within the idle timeout")
	case isProtocolError(err):
		c.Close(ws.StatusProtocolError, err.Error())
	default:
		c.Close(ws.StatusInternalServerError, "")
	}
	return fmt.Errorf("read websocket: %w", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isProtocolError(err error) bool {
	var pe ws.ProtocolError
	return errors.As(err, &pe)
}

// control handles a control frame, between messages or inside a fragmented
// one. Pings are answered with pongs; pongs only prove the browser is alive
// (the next read deadline counts from now); a close frame is answered and
// ends the connection.
func (c *Conn) control(h ws.Header, body io.Reader) error {
	payload := make([]byte, h.Length) // at most 125 bytes: CheckHeader saw to it
	if _, err := io.ReadFull(body, payload); err != nil {
		return c.readFailed(err)
	}
	switch h.OpCode {
	case ws.OpPing:
		c.mu.Lock()
		if !c.closed {
			c.armWrite()
			c.nc.Write(append(appendHeader(nil, ws.OpPong, len(payload)), payload...))
		}
		c.mu.Unlock()
	case ws.OpClose:
		code := ws.StatusNormalClosure // a close frame may carry no code
		if len(payload) > 0 {
			var reason string
			code, reason = ws.ParseCloseFrameData(payload)
			if err := ws.CheckCloseFrameData(code, reason); err != nil {
				c.Close(ws.StatusProtocolError, err.Error())
				return fmt.Errorf("read websocket: %w", err)
			}
		}
		// Echo the code, as RFC 6455 5.5.1 asks, unless we closed first.
		c.Close(code, "")
		return errPeerClosed
	}
	return nil
}
