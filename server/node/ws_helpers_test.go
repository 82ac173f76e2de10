package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/tertulia/tertulia/server/node/nodetest"
)

// wsClient is a WebSocket client of a node's bridge, reading JSON frames as
// a browser would.
type wsClient struct {
	t       testing.TB
	conn    net.Conn
	r       io.Reader // conn, behind what the handshake read ahead
	welcome map[string]any
}

// wsDial opens a WebSocket to path on srv's HTTP port and waits for the welcome.
func wsDial(t testing.TB, srv *nodetest.Server, path string) *wsClient {
	t.Helper()
	conn, br, _, err := ws.Dialer{Timeout: waitTimeout}.Dial(context.Background(), "ws://"+srv.HTTPAddr+path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{t: t, conn: conn, r: conn}
	if br != nil { // the welcome came with the handshake's answer
		c.r = io.MultiReader(br, conn)
	}
	c.welcome = c.await("welcome", func(f map[string]any) bool { return f["type"] == "system" })
	return c
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err == nil {
		err = wsutil.WriteClientText(c.conn, b)
	}
	if err != nil {
		c.t.Fatalf("ws send: %v", err)
	}
}

// await skips frames until one satisfies match, and returns it.
func (c *wsClient) await(what string, match func(map[string]any) bool) map[string]any {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		data, err := wsutil.ReadServerText(struct {
			io.Reader
			io.Writer
		}{c.r, c.conn})
		if err != nil {
			c.t.Fatalf("ws: waiting for %s: %v", what, err)
		}
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Fatalf("ws: frame %q: %v", data, err)
		}
		if match(f) {
			return f
		}
	}
}
