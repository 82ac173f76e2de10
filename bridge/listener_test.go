package bridge_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tertulia/tertulia/bridge"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
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
	for name, sent := range map[string]string{
		"a prefix of the endpoint":   "GET /api/v1/w",
		"a websocket head cut short": "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			tg := start(t, inProcess, node.Config{}, bridge.Config{})
			c := dialTCP(t, tg)
			c.write(sent) // then nothing
			tg.node.Stop(t)
			if _, err := c.br.ReadByte(); err == nil || isTimeoutErr(err) {
				t.Fatalf("read after stop: %v, want the connection closed", err)
			}
		})
	}
}

// An upgrade on a fresh connection is served off the listener and never
// reaches the HTTP server; an upgrade on a connection that has carried a
// plain request does, through the bridge's handlers; both work.
func TestUpgradesSkipTheHTTPServer(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	cc, err := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(bridge.Config{Upstream: bridge.Remote{Client: chatv1.NewChatServiceClient(cc)}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, h := range b.Handlers() {
		mux.Handle(p, h)
	}
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "pong") })
	var served atomic.Int64
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		mux.ServeHTTP(w, r)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(b.Listener(l, waitTimeout)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		b.Shutdown(ctx)
		hs.Shutdown(ctx)
		<-done
		cc.Close()
	})
	tg := &target{node: srv, host: l.Addr().String()}
	token := srv.Token(t, "alice", false)

	c := dialTCP(t, tg)
	c.write(upgradeRequest(tg.host, "/api/v1/ws/authenticated?token="+token))
	if res := c.response(); res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s, want 101", res.Status)
	}
	c.welcome()
	if n := served.Load(); n != 0 {
		t.Errorf("the HTTP server served %d requests for an upgrade on a fresh connection, want 0", n)
	}

	k := dialTCP(t, tg)
	k.write("GET /ping HTTP/1.1\r\nHost: " + tg.host + "\r\n\r\n")
	res := k.response()
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	k.write(upgradeRequest(tg.host, "/api/v1/ws/authenticated?token="+srv.Token(t, "bob", false)))
	if res := k.response(); res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade after a plain request: %s, want 101", res.Status)
	}
	k.welcome()
	if n := served.Load(); n != 2 {
		t.Errorf("the HTTP server served %d requests on a kept-alive connection, want 2 (the plain one and the upgrade)", n)
	}
}
