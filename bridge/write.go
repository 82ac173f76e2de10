package bridge

import (
	"fmt"
	"sync"
	"time"

	"github.com/gobwas/ws"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// sendPing keeps the connection alive through proxies and lets a silent
// peer be noticed: the browser answers with a pong, which the reader counts as
// life. It runs on the timer, so an idle connection holds no goroutine.
// Its first run may be for the upgrade's answer instead (see headHold).
func (c *Conn) sendPing() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.headTimer {
		// The timer's first run is headHold after the upgrade: it only
		// sends the answer, if no frame took it, and the pings start.
		c.headTimer = false
		var err error
		if c.head != nil {
			c.armWrite()
			if err = c.writeHead(); err != nil {
				c.writeFailed()
			}
		}
		c.mu.Unlock()
		if err == nil {
			c.ping.Reset(c.b.cfg.PingInterval - headHold)
		}
		return
	}
	c.armWrite()
	err := c.writeHead() // a ping interval shorter than headHold
	if err == nil {
		_, err = c.nc.Write(pingFrame)
	}
	if err != nil {
		c.writeFailed()
	}
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

// writeHead writes the upgrade's answer if it is still held. The caller
// holds mu and has armed the write deadline.
func (c *Conn) writeHead() error {
	if c.head == nil {
		return nil
	}
	_, err := c.nc.Write(c.head)
	c.head = nil
	return err
}

// pingFrame is an empty, unmasked ping (RFC 6455 5.5.2).
var pingFrame = []byte{0x80 | byte(ws.OpPing), 0}

// WriteFrames sends frames, each one event's JSON, in one socket write. It
// is the hub's writer (in-process) or the upstream reader (remote) that
// calls it. Once a write has failed, this one or a ping's, it returns
// ErrClosed (see writeFailed).
//
// A plain client gets one WebSocket text message per event, as the seed
// sent them. A client that negotiated Subprotocol gets the events joined
// with '\n' in as few messages as fit within MaxFrameBytes each (an event
// bigger than that goes alone): a client pays per message it reads, in
// its WebSocket library's framing and in its event loop, and encoding/json
// never writes a raw newline inside an object, so the split is unambiguous.
func (c *Conn) WriteFrames(frames [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	n := len(c.head)
	for _, f := range frames {
		n += ws.MaxHeaderSize + len(f)
	}
	bp := writeBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	if cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	if c.head != nil && c.headTimer && c.ping.Stop() {
		// The answer goes out with this write: the timer that would have
		// sent it alone has nothing to do, and its run at headHold would
		// cost every new connection a goroutine. It is set for the first
		// ping instead. (If Stop failed, sendPing runs now and sets it.)
		c.headTimer = false
		c.ping.Reset(c.b.cfg.PingInterval)
	}
	buf, c.head = append(buf, c.head...), nil
	if c.protocol == Subprotocol {
		buf = appendJoined(buf, frames, c.b.cfg.MaxFrameBytes)
	} else {
		for _, f := range frames {
			buf = appendHeader(buf, ws.OpText, len(f))
			buf = append(buf, f...)
		}
	}
	c.armWrite()
	_, err := c.nc.Write(buf)
	if cap(buf) <= maxPooledBuffer {
		*bp = buf[:0]
		writeBuffers.Put(bp)
	}
	if err != nil {
		c.writeFailed()
		return fmt.Errorf("write websocket: %w", err)
	}
	return nil
}

// writeFailed ends the connection after a failed write, which may have
// left a frame cut short: nothing more is written (a frame header, even a
// close frame's, in the middle of the broken frame would show the browser a
// protocol error rather than the end of the connection), WriteFrames
// returns ErrClosed from now on, so that the session ends with a reason,
// and the reader wakes up at once rather than at the idle timeout. The
// code, if none was set, is 1006 (RFC 6455 7.1.5: no close frame was
// sent), so that the connection reads as closed (see Bridge.run). The
// caller holds mu.
func (c *Conn) writeFailed() {
	c.closed = true
	c.code.CompareAndSwap(0, uint32(ws.StatusAbnormalClosure))
	c.closing.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

// appendJoined appends frames as text messages of the events joined with
// '\n', each message as long as fits within limit bytes, in order.
func appendJoined(b []byte, frames [][]byte, limit int) []byte {
	for len(frames) > 0 {
		k, n := 1, len(frames[0])
		for k < len(frames) && n+1+len(frames[k]) <= limit {
			n += 1 + len(frames[k])
			k++
		}
		b = appendHeader(b, ws.OpText, n)
		b = append(b, frames[0]...)
		for _, f := range frames[1:k] {
			b = append(append(b, '\n'), f...)
		}
		frames = frames[k:]
	}
	return b
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
