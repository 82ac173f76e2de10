package bridge_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/node"
)

// upgradeRequest is a WebSocket handshake for path, as a browser sends it.
func upgradeRequest(host, path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// rawConn is a TCP connection to the node's HTTP port, spoken to by hand.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialTCP(t *testing.T, tg *target) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", tg.host, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(waitTimeout))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) response() *http.Response {
	c.t.Helper()
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	return res
}

// welcome reads the first WebSocket frame and checks it is the welcome.
func (c *rawConn) welcome() {
	c.t.Helper()
	data, err := wsutil.ReadServerText(struct {
		io.Reader
		io.Writer
	}{c.br, c.nc})
	if err != nil || !strings.Contains(string(data), `"type":"system"`) {
		c.t.Fatalf("first frame %q, %v; want the welcome", data, err)
	}
}

// The node's HTTP port serves WebSocket upgrades and plain HTTP alike,
// however the bytes arrive: a request line in pieces, an upgrade on a
// connection that has already carried a plain request, a wrong path.
func TestUpgradesAndHTTPShareThePort(t *testing.T) {
	tg := start(t, inProcess, node.Config{}, bridge.Config{})
	token := tg.node.Token(t, "alice", false)

	t.Run("plain HTTP", func(t *testing.T) {
		c := dialTCP(t, tg)
		c.write("GET /health HTTP/1.1\r\nHost: " + tg.host + "\r\n\r\n")
		if res := c.response(); res.StatusCode != http.StatusOK {
			t.Fatalf("GET /health: %s, want 200", res.Status)
		}
	})
	t.Run("request line byte by byte", func(t *testing.T) {
		c := dialTCP(t, tg)
		req := upgradeRequest(tg.host, "/api/v1/ws/authenticated?token="+token)
		for i := range 20 {
			c.write(req[i : i+1])
			time.Sleep(2 * time.Millisecond)
		}
		c.write(req[20:])
		if res := c.response(); res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %s, want 101", res.Status)
		}
		c.welcome()
	})
	t.Run("upgrade after a plain request", func(t *testing.T) {
		c := dialTCP(t, tg)
		c.write("GET /health HTTP/1.1\r\nHost: " + tg.host + "\r\n\r\n")
		res := c.response()
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		c.write(upgradeRequest(tg.host, "/api/v1/ws/authenticated?token="+token))
		if res := c.response(); res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade on a kept-alive connection: %s, want 101", res.Status)
		}
		c.welcome()
	})
	t.Run("unknown path under the endpoint", func(t *testing.T) {
		c := dialTCP(t, tg)
		c.write(upgradeRequest(tg.host, "/api/v1/ws/nope"))
		if res := c.response(); res.StatusCode != http.StatusNotFound {
			t.Fatalf("upgrade of /api/v1/ws/nope: %s, want 404", res.Status)
		}
	})
	t.Run("a path that only starts like the endpoint", func(t *testing.T) {
		c := dialTCP(t, tg)
		c.write("GET /api/v1/wsx HTTP/1.1\r\nHost: " + tg.host + "\r\n\r\n")
		if res := c.response(); res.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /api/v1/wsx: %s, want 404 from the HTTP server", res.Status)
		}
	})
}

// A connection that never sends its request is closed when the node
// stops, and leaves no goroutine behind (TestMain checks).
func TestSilentConnectionClosedOnStop(t *testing.T) {
	tg := start(t, inProcess, node.Config{}, bridge.Config{})
	c := dialTCP(t, tg)
	c.write("GET /api/v1/w") // a prefix of the endpoint, then nothing
	tg.node.Stop(t)
	if _, err := c.br.ReadByte(); err == nil || isTimeoutErr(err) {
		t.Fatalf("read after stop: %v, want the connection closed", err)
	}
}
