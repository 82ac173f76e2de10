package bridge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// recv returns the next chat frame from the browser. Bad frames (invalid
// JSON, unknown types) are handed to refuse and skipped; control frames are
// handled. It returns an error once the connection is over, after closing
// it with the fitting code when the browser broke a rule (1009 for a frame
// over the size limit).
func (c *Conn) recv(refuse func(*FrameError)) (*chatv1.ClientFrame, error) {
	for {
		data, err := c.readMessage(c.idleTimeout(), time.Time{}, reasonIdle, c.b.cfg.MaxFrameBytes)
		if err != nil {
			return nil, err
		}
		if f := c.clientFrame(data, refuse); f != nil {
			return f, nil
		}
	}
}

// Serve hands the browser's chat frames to handle, and the frames it
// cannot map to refuse, in order, until the connection is over, and then
// calls done with why, as recv would return it. Refusals go through the
// caller so that they queue behind the answers to the frames before them.
// Serve returns at once.
//
// Between bursts of frames a goroutine of the connection's own only waits
// for the socket to become readable, a few calls deep; the frames are read,
// decoded and handled by one of the bridge's workers (see workers), which
// also arms the read deadline for the next wait. Handling a frame grows a
// goroutine's stack to 8 KiB, which a parked goroutine keeps: this way an
// idle connection holds one goroutine with the smallest stack, 2 KiB, and
// no read buffer.
//
// That goroutine starts here, afresh, rather than being the one that set
// the connection up: a stack that once grew to 4 KiB never shrinks back
// (the runtime halves a stack only when less than a quarter of it, its
// 800-byte guard included, is in use), and a goroutine grows past 2 KiB as
// soon as its frames pass about 1.1 KiB. So the waiting goroutine is
// shallow, allocates nothing while it waits, and runs nothing deep: not
// setting a deadline (half a KiB of runtime timer code), not a system call
// through the scheduler (see peekReadable). When it ran the set-up, every
// idle connection cost 4 KiB of stack instead of 2. A connection over TLS
// terminated here waits the same way, on the socket under the TLS (see
// tls.go). TestIdleConnection and BenchmarkIdleConnectionCost report what
// an idle connection holds.
func (c *Conn) Serve(handle func(*chatv1.ClientFrame), refuse func(*FrameError), done func(error)) {
	// Made once: a burst allocates no task and no channel.
	bursts := make(chan error, 1)
	burst := func() { bursts <- c.burst(handle, refuse) }
	go c.serve(burst, bursts, done)
}

// serve is the connection's own goroutine (see Serve).
func (c *Conn) serve(burst func(), bursts chan error, done func(error)) {
	for {
		err := c.awaitBytes()
		if err == nil {
			c.b.workers.run(burst)
			err = <-bursts
		}
		if err != nil {
			done(err) // the goroutine ends: its stack may grow now
			return
		}
	}
}

// burst reads and handles the frames that have arrived: at least one, and
// then as many as are already buffered.
func (c *Conn) burst(handle func(*chatv1.ClientFrame), refuse func(*FrameError)) error {
	for {
		data, more, err := c.readFrame(c.idleTimeout(), reasonIdle, c.b.cfg.MaxFrameBytes)
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

// readMessage returns the payload of the next data message, waiting at
// most idle for each frame and, unless by is zero, until by at the latest,
// however many control frames come meanwhile: a ping or a pong is life,
// not the auth frame the wait before authentication is for. If the wait
// runs out, the connection is closed with 1008 and the reason late.
func (c *Conn) readMessage(idle time.Duration, by time.Time, late string, limit int) ([]byte, error) {
	for {
		wait := idle
		if !by.IsZero() {
			wait = min(wait, time.Until(by))
		}
		data, _, err := c.readFrame(wait, late, limit)
		if err != nil || data != nil {
			return data, err
		}
	}
}

// awaitBytes waits until the browser has sent something, the connection
// has been silent for too long (it is then closed) or it is closing. The
// read deadline was armed by the last read (or newConn), off this
// goroutine (see Serve).
func (c *Conn) awaitBytes() error {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.closing.Load() {
		return ErrClosed
	}
	if c.raw == nil || c.br != nil { // br is held only while there is something to read
		return nil
	}
	if err := waitReadable(c.raw); err != nil {
		return c.readFailed(err, reasonIdle, 0)
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
// frames that continue it. The read buffer is let go whenever it is empty,
// and the deadline of the wait for the next frame is armed then. A wait that
// runs out closes the connection with 1008 and the reason late.
func (c *Conn) readFrame(idle time.Duration, late string, limit int) (data []byte, more bool, err error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if err := c.armRead(idle); err != nil {
		return nil, false, err
	}
	br := c.reader()
	if c.rd == nil {
		// A message is read whole, so a new reader loses no state.
		c.rd = frameReaders.Get().(*wsutil.Reader)
		*c.rd = wsutil.Reader{
			Source:         br,
			State:          ws.StateServerSide,
			CheckUTF8:      true,
			OnIntermediate: c.control,
		}
	}
	// Set for every message: a reader kept for the frames buffered after
	// an auth frame must not keep that frame's smaller limit.
	c.rd.MaxMessageSize = int64(limit)
	defer func() {
		if err != nil {
			return
		}
		// Over TLS, what tls.Conn holds is taken now, on this worker:
		// awaitBytes would not see it on the socket (see takeHeld).
		if more = c.br.Buffered() > 0 || c.tc != nil && c.takeHeld(); !more {
			c.releaseReaders()
			c.armRead(c.idleTimeout()) // for awaitBytes; ErrClosed shows there
		}
	}()
	h, err := c.rd.NextFrame()
	if err != nil {
		return nil, false, c.readFailed(err, late, limit)
	}
	if h.OpCode.IsControl() {
		return nil, false, c.control(h, c.rd)
	}
	// The limit on the whole message is the reader's; this only sizes the
	// buffer, never beyond what the limit allows.
	data, err = io.ReadAll(c.rd)
	if err != nil {
		return nil, false, c.readFailed(err, late, limit)
	}
	return data, false, nil
}

// reader returns the read buffer, taking one from the pool if none is held.
func (c *Conn) reader() *bufio.Reader {
	if c.br == nil {
		c.br = readers.Get().(*bufio.Reader)
		c.br.Reset(inputOf(c.nc))
	}
	return c.br
}

// releaseReaders lets go of the read buffer and the frame reader, which
// the connection holds only while there is something to read.
func (c *Conn) releaseReaders() {
	// Not a restReader, unless it has the pooled ones' size: Reset makes
	// it as good as one of them.
	if c.br != nil && c.br.Size() == readBufferSize {
		c.br.Reset(nil)
		readers.Put(c.br)
	}
	if c.rd != nil {
		*c.rd = wsutil.Reader{}
		frameReaders.Put(c.rd)
	}
	c.br, c.rd = nil, nil
}

// readers are the read buffers of connections that are reading a frame,
// and frameReaders their frame readers.
var (
	readers      = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	frameReaders = sync.Pool{New: func() any { return new(wsutil.Reader) }}
)

// readBufferSize is the read buffer of a connection; bigger frames are read
// through it in pieces.
const readBufferSize = 1 << 10

// readFailed closes the connection with the code the failure calls for and
// returns the error recv reports; late is the reason of a close for a
// timeout, limit the size the message read was held to (0 where no message
// was being read).
func (c *Conn) readFailed(err error, late string, limit int) error {
	switch {
	case errors.Is(err, wsutil.ErrMessageTooLarge), errors.Is(err, wsutil.ErrFrameTooLarge):
		c.Close(ws.StatusMessageTooBig, fmt.Sprintf("frame larger than %d bytes", limit))
	case errors.Is(err, wsutil.ErrInvalidUTF8):
		c.Close(ws.StatusInvalidFramePayloadData, "text frame is not valid UTF-8")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), c.closing.Load():
		// The browser went away, or we are closing and it answered.
		c.Close(ws.StatusNormalClosure, "")
		return errPeerClosed
	case isTimeout(err):
		c.Close(ws.StatusPolicyViolation, late)
	case isProtocolError(err):
		c.Close(ws.StatusProtocolError, err.Error())
	default:
		c.Close(ws.StatusInternalServerError, "")
	}
	return fmt.Errorf("read websocket: %w", err)
}

// reasonIdle is the reason of the close of a connection silent for longer
// than the idle timeout (two ping intervals).
const reasonIdle = "no frame or pong within the idle timeout"

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
		return c.readFailed(err, reasonIdle, 0)
	}
	switch h.OpCode {
	case ws.OpPing:
		c.mu.Lock()
		if !c.closed {
			c.armWrite()
			err := c.writeHead()
			if err == nil {
				_, err = c.nc.Write(append(appendHeader(nil, ws.OpPong, len(payload)), payload...))
			}
			if err != nil {
				c.writeFailed()
			}
		}
		c.mu.Unlock()
	case ws.OpClose:
		code := ws.StatusNormalClosure // a close frame may carry no code
		if len(payload) > 0 {
			var reason string
			code, reason = ws.ParseCloseFrameData(payload)
			if err := checkClose(code, reason); err != nil {
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
