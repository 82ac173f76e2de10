package bridge

import (
	"io"
	"time"

	"github.com/gobwas/ws"
)

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
	c.writeHead()
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

// closeSocket waits for a reader still running, drains what the browser still
// sends for a moment so that closing does not reset the connection, and
// closes the socket. The owner calls it once, after Close.
func (c *Conn) closeSocket() {
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

// drainLimit bounds what closeSocket reads from a browser that keeps sending.
const drainLimit = 1 << 20
