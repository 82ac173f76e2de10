package bridge_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// The answer to an upgrade that carries a token is held back to go out in
// one write with the session's welcome: the browser still gets the answer,
// then the welcome (here in one read, though that alone does not prove one
// write). The timer that would send the answer alone, were the welcome
// slow, does not ping early: nothing follows the welcome on an idle
// connection until the first ping, PingInterval later.
func TestUpgradeAnswerComesWithWelcome(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	c, err := net.Dial("tcp", srv.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Write([]byte("GET /api/v1/ws/authenticated?token=" + srv.Token(t, "ana", false) + " HTTP/1.1\r\n" +
		"Host: " + srv.HTTPAddr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := buf[:n]
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 101 ")) {
		t.Fatalf("first read = %q; want the 101 answer", got)
	}
	end := bytes.Index(got, []byte("\r\n\r\n"))
	if end < 0 {
		t.Fatalf("first read = %q; want the whole answer", got)
	}
	rest := bytes.NewReader(got[end+4:])
	h, err := ws.ReadHeader(rest)
	if err != nil {
		t.Fatalf("first read = %q: no frame after the answer (%v); want the welcome with it", got, err)
	}
	payload := make([]byte, h.Length)
	rest.Read(payload)
	if h.OpCode != ws.OpText || !strings.Contains(string(payload), `"Welcome ana"`) {
		t.Fatalf("frame after the answer = %v %q; want the welcome", h.OpCode, payload)
	}
	// Frames may follow (ana's own user_joined in the lobby), but no ping
	// until PingInterval: read what comes for twice the hold of the answer.
	c.SetReadDeadline(time.Now().Add(time.Second))
	more := io.MultiReader(rest, c)
	for {
		h, err := ws.ReadHeader(more)
		if isTimeoutErr(err) {
			return
		}
		if err != nil {
			t.Fatalf("after the welcome: %v; want frames, then nothing until the first ping", err)
		}
		if h.OpCode == ws.OpPing {
			t.Fatal("after the welcome: a ping within a second; want none until PingInterval")
		}
		if _, err := io.CopyN(io.Discard, more, h.Length); err != nil && !isTimeoutErr(err) {
			t.Fatal(err)
		}
	}
}
