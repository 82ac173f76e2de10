package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tertulia/tertulia/bridge"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// countingListener counts the bytes the server reads from its connections.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.read}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// listenCounting serves a bridge in front of a node through Listener, on a
// listener that counts what the server reads, and returns its address.
// Each of wrap, if any, wraps the listener in turn (TLS, say).
func listenCounting(t *testing.T, headTimeout time.Duration, wrap ...func(net.Listener) net.Listener) (addr string, l *countingListener, b *bridge.Bridge) {
	t.Helper()
	srv := nodetest.Start(t, node.Config{})
	cc, err := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	b, err = bridge.New(bridge.Config{Upstream: bridge.Remote{Client: chatv1.NewChatServiceClient(cc)}})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = &countingListener{Listener: tl}
	hs := &http.Server{Handler: http.NotFoundHandler()}
	done := make(chan struct{})
	var served net.Listener = l
	for _, w := range wrap {
		served = w(served)
	}
	go func() { hs.Serve(b.Listener(served, headTimeout)); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Shutdown(ctx)
		hs.Close()
		<-done
		cc.Close()
	})
	return tl.Addr().String(), l, b
}

// One header line of 256 MiB, streamed, is refused once the head passes its
// 8 KiB bound: the server reads a few KiB of it, not the whole line.
func TestHugeHeaderLineIsRefusedEarly(t *testing.T) {
	addr, l, b := listenCounting(t, 10*time.Second)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(nc, "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nX-Big: "); err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat("a", 64<<10))
	sent := 0
	for sent < 256<<20 {
		n, err := nc.Write(chunk)
		sent += n
		if err != nil {
			break
		}
	}
	if sent >= 256<<20 {
		t.Fatalf("the server took all 256 MiB of the line, want the connection closed after its bound")
	}
	// The client's writes fail once the server has closed; what the server
	// read by then is all it will ever read.
	if got := l.read.Load(); got > 20<<10 {
		t.Errorf("server read %d bytes of the head, want at most 20 KiB (8 KiB bound, 8 KiB linger)", got)
	}
	if n := b.HandshakesRefused(); n != 1 {
		t.Errorf("handshakes refused counted %d, want 1", n)
	}
	t.Logf("client wrote %d KiB before the server closed; the server read %d bytes", sent>>10, l.read.Load())
}

// A head over its bounds, by size or by count of header fields, gets 431
// with a JSON reason.
func TestOversizedHeadGets431(t *testing.T) {
	addr, _, _ := listenCounting(t, 10*time.Second)
	for name, head := range map[string]string{
		"65 headers": "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 64) + "\r\n",
		"9 KiB line": "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 9<<10) + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(waitTimeout))
			if _, err := io.WriteString(nc, head); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			defer res.Body.Close()
			var body map[string]string
			json.NewDecoder(res.Body).Decode(&body)
			if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(body["message"], "8192 bytes and 64 header fields") {
				t.Errorf("got %d %v, want 431 naming the bounds", res.StatusCode, body)
			}
		})
	}
}

// A close frame with a code no peer may send (5000) is answered with 1002,
// not echoed.
func TestCloseCode5000IsAProtocolError(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		u := login(t, tg, "alice")
		body := ws.NewCloseFrameBody(5000, "bye")
		if err := ws.WriteFrame(u.conn, ws.MaskFrame(ws.NewCloseFrame(body))); err != nil {
			t.Fatal(err)
		}
		if code, _ := u.closed(); code != ws.StatusProtocolError {
			t.Errorf("close code %d, want 1002", code)
		}
	})
}

// A connection that floods gets rate_limited, then is closed with 1008
// "flood"; meanwhile two other members chat on, with a p99 latency within
// twice their idle one, and see no more of the flood than its rate lets
// through.
func TestFloodIsClosedOthersChatOn(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{Limits: node.Limits{Limits: hub.Limits{FloodTimeout: time.Second}}}, bridge.Config{})
		bob, carol := login(t, tg, "bob"), login(t, tg, "carol")
		bob.join("quiet")
		carol.join("quiet")
		alice := login(t, tg, "alice")
		// bob's messages to carol before the flood: their idle latency.
		idle := roundTrips(bob, carol, "idle", nil)
		start := time.Now()

		// alice floods the lobby until the server closes her.
		stop := make(chan struct{})
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if wsutil.WriteClientText(alice.conn, []byte(`{"message":"flood"}`)) != nil {
					return
				}
				time.Sleep(time.Millisecond) // about 1,000 a second
			}
		}()
		defer func() { close(stop); <-wrote }()

		type closeInfo struct {
			limited int
			code    ws.StatusCode
			reason  string
		}
		aliceDone := make(chan closeInfo, 1)
		limited := make(chan struct{}) // closed at alice's first rate_limited
		go func() {
			var ci closeInfo
			for {
				f, err := alice.readWithin(10 * time.Second)
				if err != nil {
					if code, ok := closeCode(err); ok {
						ci.code = code
						ci.reason = err.(wsutil.ClosedError).Reason
					}
					aliceDone <- ci
					return
				}
				if isError(hub.CodeRateLimited)(f) {
					if ci.limited++; ci.limited == 1 {
						close(limited)
					}
				}
			}
		}()

		// bob and carol chat while alice is being refused: carol gets all
		// of bob's messages, in order, about as fast as when all was quiet.
		select {
		case <-limited:
		case <-time.After(10 * time.Second):
			t.Fatal("alice was never rate_limited")
		}
		flood := 0
		during := roundTrips(bob, carol, "ping", &flood)
		if want := 2 * idle; during > want {
			t.Errorf("bob to carol during the flood: p99 %v, want within 2x the idle %v", during, idle)
		}
		ci := <-aliceDone
		if ci.limited == 0 || ci.code != ws.StatusPolicyViolation || !strings.HasPrefix(ci.reason, hub.CodeFlood) {
			t.Errorf("alice: %d rate_limited, then close %d %q; want rate_limited, then 1008 %q", ci.limited, ci.code, ci.reason, hub.CodeFlood+"...")
		}
		// Count the rest of the flood carol was sent, up to a message of bob's
		// sent after alice was closed.
		bob.sendJSON(map[string]string{"message": "after", "room": "quiet"})
		carol.await("after", func(f frame) bool {
			if isMessage("flood")(f) {
				flood++
			}
			return isMessage("after")(f)
		})
		if most := 40 + 20*int(time.Since(start).Seconds()+1); flood > most {
			t.Errorf("carol got %d messages of the flood, want at most %d (burst 40, 20/s)", flood, most)
		}
	})
}

// roundTrips sends 15 messages from one member to another in room quiet,
// each after the last has arrived, and returns the p99 of the time each
// took, which of 15 is the slowest (at least 20 ms: finer than that, the race detector and a shared
// 2-core machine make noise, not a measure; it read 23-47 ms once for a
// quiet room with the machine's load average at 10). Messages of the flood seen meanwhile
// are counted in flood, if not nil. Twice 15 stays within the sender's own
// burst of 40 messages.
func roundTrips(from, to *wsUser, prefix string, flood *int) time.Duration {
	const n = 15
	took := make([]time.Duration, 0, n)
	for i := range n {
		text := fmt.Sprintf("%s %d", prefix, i)
		sent := time.Now()
		from.sendJSON(map[string]string{"message": text, "room": "quiet"})
		to.await(text, func(f frame) bool {
			if flood != nil && isMessage("flood")(f) {
				*flood++
			}
			return f.str("type") == "message" && f.str("room") == "quiet" && f.str("message") == text
		})
		took = append(took, time.Since(sent))
	}
	slices.Sort(took)
	return max(took[n*99/100], 20*time.Millisecond)
}

// Over the per-user or per-IP count, the next WebSocket is closed with 1008
// and a reason that says which limit.
func TestConnectionCapsRefuseWithAReason(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits hub.Limits
		users  []string
		want   string
	}{
		{"per user", hub.Limits{ConnsPerUser: 2}, []string{"alice", "alice", "alice"}, "a user may open at most 2"},
		{"per IP", hub.Limits{ConnsPerIP: 2}, []string{"alice", "bob", "carol"}, "an address may open at most 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := start(t, inProcess, node.Config{Limits: node.Limits{Limits: tc.limits}}, bridge.Config{})
			for _, u := range tc.users[:2] {
				login(t, tg, u)
			}
			expectCapped(t, tg, tc.users[2], dialOpts{}, tc.want)
		})
	}
}

// expectCapped dials user's WebSocket with o and checks that it is closed
// with 1008 and a reason containing want: a connection cap's refusal.
func expectCapped(t *testing.T, tg *target, user string, o dialOpts, want string) {
	t.Helper()
	u, err := dialRaw(t, tg, authPath(t, tg, user), o)
	if err != nil {
		t.Fatal(err)
	}
	u.name = user
	if code, reason := u.closed(); code != ws.StatusPolicyViolation || !strings.Contains(reason, want) {
		t.Errorf("%s (from %q) closed %d %q, want 1008 containing %q", user, o.from, code, reason, want)
	}
}

// The per-IP count is of the browser's address on both paths: a bridge
// apart from the node names it, and the node (trusting loopback by
// default) counts it, not the bridge's own. Before, every browser behind
// one bridge shared its count: the cap's next browser from anywhere was
// refused.
func TestConnsPerIPCountsTheBrowser(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{Limits: node.Limits{Limits: hub.Limits{ConnsPerIP: 2}}}, bridge.Config{})
		for i, from := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"} {
			connect(t, tg, fmt.Sprintf("user%d", i), authPath(t, tg, fmt.Sprintf("user%d", i)), dialOpts{from: from})
		}
		expectCapped(t, tg, "user4", dialOpts{from: "127.0.0.2"}, "an address may open at most 2")
	})
}

// A node that trusts no proxy does not take a peer's word for the address
// it relays: behind a bridge it does not trust, browsers from two addresses
// share the bridge's count.
func TestUntrustedBridgeIsCountedItself(t *testing.T) {
	cfg := node.Config{Limits: node.Limits{Limits: hub.Limits{ConnsPerIP: 2}}, TrustedProxies: []netip.Prefix{}}
	tg := start(t, remote, cfg, bridge.Config{})
	connect(t, tg, "user0", authPath(t, tg, "user0"), dialOpts{from: "127.0.0.2"})
	connect(t, tg, "user1", authPath(t, tg, "user1"), dialOpts{from: "127.0.0.3"})
	expectCapped(t, tg, "user2", dialOpts{from: "127.0.0.4"}, "an address may open at most 2")
}

// A frame with a 60 KB id is refused with id_too_long, without its id, and
// reaches nobody.
func TestLongIDIsRefused(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		alice, bob := login(t, tg, "alice"), login(t, tg, "bob")
		alice.sendJSON(map[string]string{"message": "big", "id": strings.Repeat("i", 60_000)})
		alice.sendJSON(map[string]string{"message": "small", "id": "s1"})
		f := alice.await("id_too_long", isError(hub.CodeIDTooLong))
		if f.str("id") != "" {
			t.Errorf("the error echoed an id of %d bytes, want none", len(f.str("id")))
		}
		got := bob.await("small", func(f frame) bool { return f.str("type") == "message" })
		if got.str("message") != "small" {
			t.Errorf("bob got %q first, want only the small message", got.str("message"))
		}
	})
}

// A head that stops coming is cut off at the handshake deadline.
func TestSlowHeadIsCutOff(t *testing.T) {
	addr, _, _ := listenCounting(t, 300*time.Millisecond)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(waitTimeout))
	io.WriteString(nc, "GET /api/v1/ws HTTP/1.1\r\nHost: x\r\n")
	if n, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read %d bytes, %v; want the connection closed at the handshake deadline", n, err)
	}
}

// The auth frame is read before anyone is authenticated, so it may hold a
// token of the longest size accepted and a little JSON, no more: a bigger
// one closes the connection with 1009 instead of being held, up to the
// 64 KiB of a chat frame, for as long as the client takes to send it. The
// frames after it have the chat frame's bound again.
func TestAuthFrameIsBounded(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		// The node's token bound is the in-process bridge's; a remote
		// bridge is told its own.
		tg := start(t, m, node.Config{JWT: auth.Config{MaxTokenBytes: 1024}}, bridge.Config{MaxTokenBytes: 1024})
		tok := tg.node.Token(t, "alice", false)
		authFrame := func(pad int) string { return `{"type":"auth","token":"` + tok + `"` + strings.Repeat(" ", pad) + `}` }

		fat, err := dialRaw(t, tg, "/api/v1/ws/authenticated", dialOpts{})
		if err != nil {
			t.Fatal(err)
		}
		fat.name = "fat auth frame"
		fat.send(authFrame(20_000))
		if code, reason := fat.closed(); code != ws.StatusMessageTooBig {
			t.Errorf("close %d %q, want 1009", code, reason)
		}

		// An auth frame at the bound, and in the same write a chat frame
		// over it: the session opens and the chat frame is taken.
		u, err := dialRaw(t, tg, "/api/v1/ws/authenticated", dialOpts{})
		if err != nil {
			t.Fatal(err)
		}
		u.name = "auth frame at the bound"
		var both bytes.Buffer
		wsutil.WriteClientText(&both, []byte(authFrame(2048-len(authFrame(0)))))
		wsutil.WriteClientText(&both, []byte(`{"message":"after auth"`+strings.Repeat(" ", 8000)+`}`))
		if _, err := u.conn.Write(both.Bytes()); err != nil {
			t.Fatal(err)
		}
		if f := u.next(); f.str("type") != "system" {
			t.Fatalf("first frame %v, want the welcome", f)
		}
		u.await("its own message", isMessage("after auth"))
	})
}
