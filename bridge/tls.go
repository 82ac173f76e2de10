package bridge

import (
	"crypto/tls"
	"io"
	"net"
	"syscall"
	"time"
)

// A browser that reached the bridge over TLS terminated by the server (a
// *tls.Conn from the node's listener) is served as a plaintext one is: its
// idle connection waits, on its own shallow goroutine, for the TCP socket
// under the TLS to become readable (waitReadable), and only then does a
// worker read and decrypt the records and handle the frames. No worker
// stays parked in a TLS read, and no read buffer is held, while it is idle.
//
// What that cannot release is tls.Conn's own, about 6.5 KiB of heap per
// connection (Go 1.26, TLS 1.3, a heap profile of idle connections): its
// raw input and handshake buffers, about 3.5 KiB, at the size reading the
// ClientHello grew them to (a post-quantum key share makes it 1.5 KiB);
// the AES-GCM states of both directions, 1.8 KiB; the tls.Conn itself,
// 0.9 KiB. crypto/tls keeps them for the connection's life and offers no
// way to let go of its buffers. BenchmarkIdleConnectionCost reports what an
// idle connection costs over ws and over wss.
//
// tls.Conn may hold input the socket no longer shows: the rest of a
// decrypted record that the read buffer had no room for, or whole records
// read off the socket along with an earlier one. takeHeld moves it into the
// read buffer before the connection waits on the socket again.

// socketOf returns the socket that waitReadable waits on for nc, or nil if
// there is none, and nc as a *tls.Conn if it is one.
func socketOf(nc net.Conn) (syscall.RawConn, *tls.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		return rawConnOf(tc.NetConn()), tc
	}
	return rawConnOf(nc), nil
}

// inputOf is what a connection's read buffer reads from: nc itself, or
// for TLS, nc through tlsInput.
func inputOf(nc net.Conn) io.Reader {
	if tc, ok := nc.(*tls.Conn); ok {
		return tlsInput{tc} // one pointer: no allocation
	}
	return nc
}

// tlsInput reads a TLS connection for the read buffer, with one
// difference: data that comes with a timeout comes without it. tls.Conn
// returns both when, having copied out a record under takeHeld's expired
// deadline, it finds the start of an alert behind it and waits for the
// rest; the read buffer would keep that timeout and hand it to the next
// read under a deadline just armed, ending a healthy connection as idle.
// tls.Conn itself keeps no timeout: the next read takes the alert up again.
type tlsInput struct{ *tls.Conn }

func (t tlsInput) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 && isTimeout(err) {
		err = nil
	}
	return n, err
}

// expired is a deadline long past.
var expired = time.Unix(1, 0)

// takeHeld reads into the read buffer, without waiting, what the TLS
// connection holds already, and reports whether there is something for
// readFrame: bytes in the buffer, or an error that tls.Conn returns again
// on the next read (it keeps every error but a timeout). If there is
// nothing, the buffer is still held: the caller lets it go. The read
// deadline is left expired; the caller arms the next. c.readMu is held, or
// c is not shared yet.
//
// An expired deadline makes a read that would wait on the socket fail at
// once, before any system call, and harmlessly: tls.Conn keeps the part of
// a record it has read, and a timeout is not kept as its error. What
// tls.Conn holds comes out without touching the socket.
func (c *Conn) takeHeld() bool {
	br := c.reader()
	c.nc.SetReadDeadline(expired)
	_, err := br.Peek(1)
	return err == nil || !isTimeout(err)
}
