package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// The errors of readHead: a head over its bounds, answered with 431.
var (
	errHeadTooLarge   = errors.New("request line and headers too large")
	errTooManyHeaders = errors.New("too many header fields")
)

// readHead reads the head of an HTTP request from r: the request line and
// the header lines up to the empty line that ends them. prefix holds bytes
// of it read already. The head must fit in maxBytes and hold at most
// maxHeaders header lines; nothing is read past maxBytes in all, so a
// client cannot make the server hold more than that whatever it sends.
// The head is read on into prefix's spare capacity, if it has any: the
// caller that read its start can hand over its buffer, with no copy.
// head is the complete head, ending with its empty line; rest holds what
// was read after it (a client may send its first frames at once).
//
// Lines end with "\n" or "\r\n". The errors are errHeadTooLarge,
// errTooManyHeaders, or the read's (io.ErrUnexpectedEOF for a head cut
// short).
func readHead(r io.Reader, prefix []byte, maxBytes, maxHeaders int) (head, rest []byte, err error) {
	buf := prefix[:len(prefix):max(len(prefix), min(cap(prefix), maxBytes))]
	if len(buf) == cap(buf) && len(buf) < maxBytes {
		buf = append(make([]byte, 0, min(maxBytes, max(2*len(buf), headChunk))), buf...)
	}
	lines := 0     // lines seen, the request line included
	lineStart := 0 // where the line being scanned starts
	scanned := 0   // bytes of buf scanned for line ends
	for {
		for i := bytes.IndexByte(buf[scanned:], '\n'); i >= 0; i = bytes.IndexByte(buf[scanned:], '\n') {
			end := scanned + i + 1
			line := buf[lineStart:end]
			scanned, lineStart = end, end
			if lines > 0 && (len(line) == 1 || len(line) == 2 && line[0] == '\r') {
				return buf[:end:end], buf[end:], nil
			}
			if lines++; lines > maxHeaders+1 {
				return nil, nil, errTooManyHeaders
			}
		}
		scanned = len(buf)
		if len(buf) >= maxBytes {
			return nil, nil, errHeadTooLarge
		}
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(maxBytes, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && n == 0 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, err
		}
	}
}

// headChunk is the buffer a head is first read into; most fit.
const headChunk = 1 << 10

// headBuffers hold the heads of upgrades being read: a head is done with
// once its connection is upgraded, and thousands may connect at once.
var headBuffers = sync.Pool{New: func() any { return new([headChunk]byte) }}

// handshake reads the head of a WebSocket upgrade on c, of which prefix was
// read already, within the bridge's bounds, calls headRead once it has
// (whether or not it is whole and within them), and upgrades c. A head over the
// bounds is answered with 431 and c closed; one that breaks off is closed
// without an answer. Nothing refers to prefix's array once it returns.
func (b *Bridge) handshake(c net.Conn, prefix []byte, headRead func(net.Conn)) {
	head, rest, err := readHead(c, prefix, b.cfg.MaxHandshakeBytes, b.cfg.MaxHandshakeHeaders)
	headRead(c)
	if err != nil {
		b.log.Debug("websocket handshake refused", "remote", c.RemoteAddr().String(), "err", err)
		if errors.Is(err, errHeadTooLarge) || errors.Is(err, errTooManyHeaders) {
			b.refusedHeads.Add(1)
			b.refuseHead(c, fmt.Sprintf("%v: at most %d bytes and %d header fields", err,
				b.cfg.MaxHandshakeBytes, b.cfg.MaxHandshakeHeaders))
		}
		c.Close()
		return
	}
	// The upgrader reads the head from memory: it is whole, so it reads
	// nothing from the socket.
	b.upgrade(&prefixConn{Conn: c, prefix: head}, restReader(c, rest))
}

// restReader returns a read buffer that yields rest, what a client sent
// right behind its head, and then what c reads; nil if rest is empty. The
// connection holds it until it is empty, as it holds a pooled one, and then
// reads c itself and waits for its socket as it always does. The buffer is
// as large as rest, so that its first read takes all of rest: once it is
// empty, nothing of rest is left behind it. (Were rest read through a
// wrapper of c instead, the connection would have no socket to wait on,
// and would hold a worker parked in a read for its whole life.) rest is
// copied: its array goes back to headBuffers.
func restReader(c net.Conn, rest []byte) *bufio.Reader {
	if len(rest) == 0 {
		return nil
	}
	return bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(rest)), inputOf(c)), len(rest))
}

// refuseHead answers 431 with message, and lingers a moment so that the
// answer is not lost to a reset caused by what the client is still sending;
// what it reads then is discarded, and bounded.
func (b *Bridge) refuseHead(c net.Conn, message string) {
	body := fmt.Sprintf("{\"code\":\"request_header_too_large\",\"message\":%q}\n", message)
	c.SetWriteDeadline(time.Now().Add(b.cfg.CloseTimeout))
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		http.StatusRequestHeaderFieldsTooLarge, http.StatusText(http.StatusRequestHeaderFieldsTooLarge), len(body), body)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(b.cfg.CloseTimeout))
	io.CopyN(io.Discard, c, lingerBytes)
}

// lingerBytes bounds what refuseHead discards while it lingers.
const lingerBytes = 8 << 10

// HandshakesRefused counts the upgrades refused with 431 for a head over
// the bounds since the bridge started.
func (b *Bridge) HandshakesRefused() int64 { return b.refusedHeads.Load() }
