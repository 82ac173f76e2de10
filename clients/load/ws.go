package load

import (
	"bufio"
	"bytes"
	"context"
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

// wsDialer opens WebSocket connections to the bridge. Each connection costs
// the tool one reader goroutine and a 4 KiB read buffer; server frames are
// classified by scanning their bytes, not decoded, so that one core can read
// a million of them a second.
type wsDialer struct {
	httpAddr string
	tokens   func(user string) (string, error)
}

var _ dialer = (*wsDialer)(nil)

func (d *wsDialer) name() string { return "ws" }

// wsURL is the bridge's WebSocket URL for user: with a token in the query,
// or the guest endpoint for "".
func wsURL(httpAddr, user string, tokens func(user string) (string, error)) (string, error) {
	u := "ws://" + httpAddr + "/api/v1/ws"
	if user == "" {
		return u, nil
	}
	tok, err := tokens(user)
	if err != nil {
		return "", err
	}
	return u + "/authenticated?token=" + url.QueryEscape(tok), nil
}

// dialError is err from dialing u, with u's token (in its query) taken out
// of the text: errors reach logs and reports, tokens must not.
func dialError(err error, u string) error {
	msg := err.Error()
	if _, query, ok := strings.Cut(u, "?"); ok {
		msg = strings.ReplaceAll(msg, query, "token=REDACTED")
	}
	return errors.New("websocket dial: " + msg)
}

func (d *wsDialer) dial(ctx context.Context, user string, m *member) (conn, error) {
	u, err := wsURL(d.httpAddr, user, d.tokens)
	if err != nil {
		return nil, err
	}
	dl := ws.Dialer{ReadBufferSize: 4 << 10, WriteBufferSize: 1 << 10, Timeout: 10 * time.Second}
	nc, br, _, err := dl.Dial(ctx, u)
	if err != nil {
		return nil, dialError(err, u)
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, 4<<10)
	}
	c := &wsConn{nc: nc, br: br, mask: ws.NewMask(), done: make(chan struct{})}
	go c.read(m)
	return c, nil
}

type wsConn struct {
	nc   net.Conn
	br   *bufio.Reader
	mask [4]byte
	done chan struct{}

	closed atomic.Bool

	wmu  sync.Mutex // protects wbuf and writes to nc
	wbuf []byte
}

var (
	keyType    = []byte(`"type"`)
	keyMessage = []byte(`"message"`)
	keyID      = []byte(`"id"`)
	typeMsg    = []byte("message")
	typeJoined = []byte("room_joined")
)

// jsonString returns the value of the string field key (with its quotes) of
// a flat JSON object, without unescaping; nil if there is none. It is enough
// for the server's frames, whose keys are unique and values never hold '"'
// in the fields read here.
func jsonString(b, key []byte) []byte {
	for off := 0; ; {
		i := bytes.Index(b[off:], key)
		if i < 0 {
			return nil
		}
		j := off + i + len(key)
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
			j++
		}
		if j >= len(b) || b[j] != ':' {
			off = off + i + 1 // a value that looks like the key
			continue
		}
		j++
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
			j++
		}
		if j >= len(b) || b[j] != '"' {
			return nil
		}
		end := bytes.IndexByte(b[j+1:], '"')
		if end < 0 {
			return nil
		}
		return b[j+1 : j+1+end]
	}
}

func (c *wsConn) read(m *member) {
	defer close(c.done)
	var buf []byte
	var msg []byte // a fragmented message being put together
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			c.end(m, err)
			return
		}
		if h.Length > 1<<20 {
			c.end(m, fmt.Errorf("server frame of %d bytes", h.Length))
			return
		}
		if int64(cap(buf)) < h.Length {
			buf = make([]byte, h.Length)
		}
		p := buf[:h.Length]
		if _, err := io.ReadFull(c.br, p); err != nil {
			c.end(m, err)
			return
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(p)
			c.writeFrame(ws.OpClose, p) // echo, as the protocol asks
			c.end(m, fmt.Errorf("closed by server: %d %s", code, reason))
			return
		case ws.OpPing:
			c.writeFrame(ws.OpPong, p)
			continue
		case ws.OpPong:
			continue
		}
		if !h.Fin || h.OpCode == ws.OpContinuation {
			msg = append(msg, p...)
			if !h.Fin {
				continue
			}
			p, msg = msg, msg[:0]
		}
		now := time.Now()
		switch t := jsonString(p, keyType); {
		case bytes.Equal(t, typeMsg):
			onMessage(m, jsonString(p, keyMessage), now)
		case bytes.Equal(t, typeJoined):
			onJoined(m, jsonString(p, keyID))
		}
	}
}

func (c *wsConn) end(m *member, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	m.onEnd(err, c.closed.Load())
	c.nc.Close()
}

// writeFrame sends one masked client frame in one write.
func (c *wsConn) writeFrame(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(p)), Masked: true, Mask: c.mask}
	var hb bytes.Buffer // small; escapes only with the frame
	hb.Grow(ws.HeaderSize(h))
	if err := ws.WriteHeader(&hb, h); err != nil {
		return err
	}
	c.wbuf = append(append(c.wbuf[:0], hb.Bytes()...), p...)
	ws.Cipher(c.wbuf[hb.Len():], c.mask, 0)
	_, err := c.nc.Write(c.wbuf)
	return err
}

func (c *wsConn) join(room, id string) error {
	return c.writeFrame(ws.OpText, []byte(`{"type":"join_room","room":"`+room+`","id":"`+id+`"}`))
}

func (c *wsConn) send(room string, payload []byte) error {
	f := make([]byte, 0, 64+len(room)+len(payload))
	f = append(f, `{"type":"message",`...)
	if room != "" {
		f = append(f, `"room":"`...)
		f = append(f, room...)
		f = append(f, `",`...)
	}
	f = append(f, `"message":"`...)
	f = append(f, payload...)
	f = append(f, `"}`...)
	return c.writeFrame(ws.OpText, f)
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
