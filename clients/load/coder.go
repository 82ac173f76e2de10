package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// coderDialer opens WebSocket connections to the bridge with
// github.com/coder/websocket, read as a lean production client would: it
// offers the tertulia.v1 subprotocol (so a frame may carry several events,
// one a line), reads each frame into one reused buffer, finds a room
// message's text with a byte scan, and decodes every other event (the
// welcome, room_joined, errors) with encoding/json. The tool's CPU per
// delivered message then measures what the server's frames cost a client
// built on a mainstream library, not what the own client gets away with.
type coderDialer struct {
	httpAddr string
	tokens   func(user string) (string, error)
	client   *http.Client
}

var _ dialer = (*coderDialer)(nil)

// dialTimeout bounds one connection's TCP connect, handshake and join.
const dialTimeout = 10 * time.Second

func newCoderDialer(httpAddr string, tokens func(string) (string, error)) *coderDialer {
	// Its own transport: no proxy from the environment (the target is
	// loopback), and no connection pool to speak of (an upgraded connection
	// leaves the pool).
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: dialTimeout}).DialContext}
	return &coderDialer{httpAddr: httpAddr, tokens: tokens, client: &http.Client{Transport: tr}}
}

func (d *coderDialer) name() string { return "ws (coder/websocket)" }

func (d *coderDialer) dial(ctx context.Context, user, room, joinID string, m *member) (conn, error) {
	u, err := wsURL(d.httpAddr, user, d.tokens)
	if err != nil {
		return nil, err
	}
	var join []byte
	if room != "" {
		join = joinFrame(nil, room, joinID)
	}
	cc := new(coderConn)
	if err := d.open(ctx, u, []string{Subprotocol}, cc, func() { cc.read(m) }, join, "join "+room, m); err != nil {
		return nil, err
	}
	return cc, nil
}

// open sets up a connection as both clients built on coder/websocket do,
// within dialTimeout: it dials u offering protocols, makes cc of the
// connection and starts read (cc's reader) on a goroutine of its own,
// writes setUp unless it is nil (what names it in an error), then waits
// until m is set up. On an error the connection is closed.
func (d *coderDialer) open(ctx context.Context, u *url.URL, protocols []string, cc *coderConn, read func(), setUp []byte, what string, m *member) error {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, _, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: d.client, Subprotocols: protocols})
	if err != nil {
		return dialError(err, u)
	}
	c.SetReadLimit(1 << 20) // as the own client
	cc.c, cc.done = c, make(chan struct{})
	go read()
	if setUp != nil {
		if err := cc.write(dctx, setUp); err != nil {
			cc.close()
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := m.waitReady(dctx); err != nil {
		cc.close()
		return fmt.Errorf("set-up: %w", err)
	}
	return nil
}

type coderConn struct {
	c      *websocket.Conn // safe for one reader and concurrent writers
	done   chan struct{}   // closed when read returns
	closed atomic.Bool     // the tool closed the connection

	wmu  sync.Mutex // protects wbuf
	wbuf []byte
}

// serverEvent is a bridge event other than a room message, decoded as a
// client that shows it would.
type serverEvent struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Message   string `json:"message"`
	Sender    string `json:"sender"`
	UserID    string `json:"user_id"`
	Username  string `json:"username"`
	Room      string `json:"room"`
	Code      string `json:"code"`
}

func (c *coderConn) read(m *member) {
	defer close(c.done)
	buf := make([]byte, 0, 4<<10) // the connection's one read buffer
	first := true
	for {
		var err error
		if buf, err = c.readFrame(buf[:0]); err != nil {
			c.end(m, err)
			return
		}
		now := time.Now()
		for ev, rest := nextEvent(buf); ev != nil; ev, rest = nextEvent(rest) {
			// The hot path: a room message, recognised and read by its
			// bytes. Everything else goes through encoding/json.
			if !first && bytes.Equal(eventType(ev), typeMsg) {
				onMessage(m, messagePayload(ev), now)
				continue
			}
			var e serverEvent
			if err := json.Unmarshal(ev, &e); err != nil {
				c.end(m, fmt.Errorf("undecodable event %.64q: %w", ev, err))
				return
			}
			switch {
			case first:
				onFirst(m, e.Type)
			case e.Type == "room_joined":
				onJoined(m, e.ID)
			case e.Type == "error":
				onError(m, e.Code, e.ID, e.Message)
			}
			first = false
		}
	}
}

// readFrame reads the next message into buf, which it grows if need be.
func (c *coderConn) readFrame(buf []byte) ([]byte, error) {
	_, r, err := c.c.Reader(context.Background())
	if err != nil {
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (c *coderConn) end(m *member, err error) {
	closedByUs := c.closed.Load()
	if closedByUs || errors.Is(err, io.EOF) || websocket.CloseStatus(err) == websocket.StatusNormalClosure {
		err = nil
	}
	m.onEnd(err, closedByUs)
	c.c.CloseNow()
}

func (c *coderConn) write(ctx context.Context, frame []byte) error {
	return c.c.Write(ctx, websocket.MessageText, frame)
}

func (c *coderConn) send(room string, payload []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = messageFrame(c.wbuf[:0], room, payload)
	return c.write(ctx, c.wbuf)
}

func (c *coderConn) close() {
	if c.closed.CompareAndSwap(false, true) {
		// The close handshake, bounded by the library (5 s each way).
		c.c.Close(websocket.StatusNormalClosure, "")
	}
	<-c.done
}
