package load

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// coderDialer opens WebSocket connections to the bridge with
// github.com/coder/websocket and decodes every server frame with
// encoding/json, as an ordinary Go client of the bridge would: the tool's
// CPU per delivered message then measures what the server's frames cost a
// typical client, not what the own zero-copy client can get away with.
type coderDialer struct {
	httpAddr string
	tokens   func(user string) (string, error)
	client   *http.Client
}

var _ dialer = (*coderDialer)(nil)

// dialTimeout bounds one connection's TCP connect and handshake.
const dialTimeout = 10 * time.Second

func newCoderDialer(httpAddr string, tokens func(string) (string, error)) *coderDialer {
	// Its own transport: no proxy from the environment (the target is
	// loopback), and no connection pool to speak of (an upgraded connection
	// leaves the pool).
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: dialTimeout}).DialContext}
	return &coderDialer{httpAddr: httpAddr, tokens: tokens, client: &http.Client{Transport: tr}}
}

func (d *coderDialer) name() string { return "ws (coder/websocket)" }

func (d *coderDialer) dial(ctx context.Context, user string, m *member) (conn, error) {
	u, err := wsURL(d.httpAddr, user, d.tokens)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: d.client})
	if err != nil {
		return nil, dialError(err, u)
	}
	c.SetReadLimit(1 << 20) // as the own client
	cc := &coderConn{c: c, done: make(chan struct{})}
	go cc.read(m)
	return cc, nil
}

type coderConn struct {
	c      *websocket.Conn // safe for one reader and concurrent writers
	done   chan struct{}   // closed when read returns
	closed atomic.Bool     // the tool closed the connection
}

// serverFrame is a bridge frame as a client that shows it decodes it.
type serverFrame struct {
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

// clientFrame is a frame this client sends.
type clientFrame struct {
	Type    string `json:"type"`
	Room    string `json:"room,omitempty"`
	Message string `json:"message,omitempty"`
	ID      string `json:"id,omitempty"`
}

func (c *coderConn) read(m *member) {
	defer close(c.done)
	for {
		// The library's own JSON path, as its users would read frames:
		// encoding/json into a struct, strings copied. It closes the
		// connection on a frame that does not decode.
		var f serverFrame
		if err := wsjson.Read(context.Background(), c.c, &f); err != nil {
			c.end(m, err)
			return
		}
		now := time.Now()
		switch f.Type {
		case "message":
			onMessage(m, f.Message, now)
		case "room_joined":
			onJoined(m, f.ID)
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

func (c *coderConn) write(f clientFrame) error {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	return wsjson.Write(ctx, c.c, f)
}

func (c *coderConn) join(room, id string) error {
	return c.write(clientFrame{Type: "join_room", Room: room, ID: id})
}

func (c *coderConn) send(room string, payload []byte) error {
	return c.write(clientFrame{Type: "message", Room: room, Message: string(payload)})
}

func (c *coderConn) close() {
	if c.closed.CompareAndSwap(false, true) {
		// The close handshake, bounded by the library (5 s each way).
		c.c.Close(websocket.StatusNormalClosure, "")
	}
	<-c.done
}
