package nodetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// WSTimeout bounds a WebSocket dial and each Await.
const WSTimeout = 5 * time.Second

// WSClient is a WebSocket client of a node's bridge, reading JSON frames as
// a browser would.
type WSClient struct {
	t    testing.TB
	Conn net.Conn
	r    io.Reader // Conn, behind what the handshake read ahead
	// queued are the events of the last message not yet awaited: with the
	// tertulia.v1 subprotocol, one message carries the events written
	// together, separated by '\n'.
	queued [][]byte
	// Welcome is the system frame the session opened with.
	Welcome map[string]any
}

// DialWS opens a WebSocket to path (with its query) on s's HTTP port,
// offering protocols, and waits for the welcome. The connection is closed
// when the test ends.
func (s *Server) DialWS(t testing.TB, path string, protocols ...string) *WSClient {
	t.Helper()
	conn, br, _, err := ws.Dialer{Timeout: WSTimeout, Protocols: protocols}.Dial(context.Background(), "ws://"+s.HTTPAddr+path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &WSClient{t: t, Conn: conn, r: conn}
	if br != nil { // the welcome came with the handshake's answer
		c.r = io.MultiReader(br, conn)
	}
	c.Welcome = c.Await("welcome", func(f map[string]any) bool { return f["type"] == "system" })
	return c
}

// Send sends v as a JSON text frame.
func (c *WSClient) Send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err == nil {
		err = wsutil.WriteClientText(c.Conn, b)
	}
	if err != nil {
		c.t.Fatalf("ws send: %v", err)
	}
}

// Await skips frames until one satisfies match, and returns it, failing the
// test after WSTimeout.
func (c *WSClient) Await(what string, match func(map[string]any) bool) map[string]any {
	c.t.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(WSTimeout))
	for {
		if len(c.queued) == 0 {
			data, _, err := ReadServerData(struct {
				io.Reader
				io.Writer
			}{c.r, c.Conn})
			if err != nil {
				c.t.Fatalf("ws: waiting for %s: %v", what, err)
			}
			c.queued = bytes.Split(data, []byte("\n"))
		}
		data := c.queued[0]
		c.queued = c.queued[1:]
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Fatalf("ws: frame %q: %v", data, err)
		}
		if match(f) {
			return f
		}
	}
}
