package bridge_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tertulia/tertulia/bridge"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// waitTimeout bounds every wait for a frame.
const waitTimeout = 5 * time.Second

// mode is one way of running the bridge.
type mode string

const (
	inProcess mode = "in-process" // inside the node, on its HTTP port
	remote    mode = "remote"     // a separate bridge server over gRPC to the node
	overTLS   mode = "tls"        // inside the node, on its HTTP port over TLS (see tls.go)
)

var modes = []mode{inProcess, remote}

// target is a node and the address of a bridge in front of it.
type target struct {
	node   *nodetest.Server
	wsBase string      // ws://host:port, or wss://host:port
	host   string      // host:port of the bridge
	tls    *tls.Config // the clients' TLS, for wss://; nil for ws://
}

// start runs a node with cfg and a bridge of mode m in front of it; bcfg
// tunes the bridge (its Upstream is set here).
func start(t *testing.T, m mode, cfg node.Config, bcfg bridge.Config) *target {
	t.Helper()
	if m == overTLS {
		cfg.Bridge = bcfg
		return startTLS(t, cfg)
	}
	if m == inProcess {
		cfg.Bridge = bcfg
		srv := nodetest.Start(t, cfg)
		return &target{node: srv, wsBase: "ws://" + srv.HTTPAddr, host: srv.HTTPAddr}
	}
	srv := nodetest.Start(t, cfg)
	cc, err := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial node: %v", err)
	}
	t.Cleanup(func() { cc.Close() }) // after the bridge's shutdown
	bcfg.Upstream = bridge.Remote{Client: chatv1.NewChatServiceClient(cc)}
	if len(bcfg.Origins.Allowed) == 0 {
		bcfg.Origins = bridge.Origins{Allowed: cfg.AllowedOrigins, Dev: cfg.Dev}
	}
	tg := serve(t, bcfg)
	tg.node = srv
	return tg
}

// serve runs a bridge with cfg on a test server until the test ends; the
// target has no node.
func serve(t testing.TB, cfg bridge.Config) *target {
	t.Helper()
	b, err := bridge.New(cfg)
	if err != nil {
		t.Fatalf("bridge.New: %v", err)
	}
	mux := http.NewServeMux()
	for p, h := range b.Handlers() {
		mux.Handle(p, h)
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("bridge shutdown: %v", err)
		}
		hs.Close()
	})
	u, _ := url.Parse(hs.URL)
	return &target{wsBase: "ws://" + u.Host, host: u.Host}
}

// frame is a JSON frame as a test reads it.
type frame map[string]any

func (f frame) str(k string) string { s, _ := f[k].(string); return s }

// wsUser is one WebSocket client.
type wsUser struct {
	t    testing.TB
	name string
	conn net.Conn
	rw   io.ReadWriter
	// welcome is the system frame the connection opened with.
	welcome frame
	proto   string // the subprotocol the server chose
	// queued are the events of the last message not yet read: with the
	// tertulia.v1 subprotocol one message carries several, split on '\n'.
	queued [][]byte
}

// dialOpts are the knobs of a dial.
type dialOpts struct {
	header    http.Header
	protocols []string
	from      string      // the loopback address to dial from (127.0.0.2…), if not the default
	tls       *tls.Config // for wss://, if not the target's
	// netDial dials the TCP connection, if not net.Dialer.
	netDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// dialRaw opens a WebSocket to path without reading anything.
func dialRaw(t testing.TB, tg *target, path string, o dialOpts) (*wsUser, error) {
	t.Helper()
	d := ws.Dialer{Timeout: waitTimeout, Protocols: o.protocols, TLSConfig: tg.tls}
	if o.header != nil {
		d.Header = ws.HandshakeHeaderHTTP(o.header)
	}
	if o.from != "" {
		nd := net.Dialer{Timeout: waitTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(o.from)}}
		d.NetDial = nd.DialContext
	}
	if o.netDial != nil {
		d.NetDial = o.netDial
	}
	if o.tls != nil {
		d.TLSConfig = o.tls
	}

	conn, br, hs, err := d.Dial(context.Background(), tg.wsBase+path)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	var r io.Reader = conn
	if br != nil {
		r = br
	}
	return &wsUser{t: t, conn: conn, rw: struct {
		io.Reader
		io.Writer
	}{r, conn}, proto: hs.Protocol}, nil
}

// connect opens a WebSocket to path and waits for its welcome.
func connect(t testing.TB, tg *target, name, path string, o dialOpts) *wsUser {
	t.Helper()
	u, err := dialRaw(t, tg, path, o)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, path, err)
	}
	u.name = name
	f := u.next()
	if f.str("type") != "system" {
		t.Fatalf("%s: first frame = %v, want system welcome", name, f)
	}
	u.welcome = f
	return u
}

// guest connects to /api/v1/ws with no token.
func guest(t testing.TB, tg *target) *wsUser {
	t.Helper()
	return connect(t, tg, "guest", "/api/v1/ws", dialOpts{})
}

// authPath is the authenticated endpoint's path with a token for user.
func authPath(t testing.TB, tg *target, user string) string {
	return "/api/v1/ws/authenticated?token=" + tg.node.Token(t, user, false)
}

// login connects name to /api/v1/ws/authenticated with a token in the URL.
func login(t testing.TB, tg *target, name string) *wsUser {
	t.Helper()
	return loginWith(t, tg, name, dialOpts{})
}

// loginWith is login with dial options o.
func loginWith(t testing.TB, tg *target, name string, o dialOpts) *wsUser {
	t.Helper()
	return connect(t, tg, name, authPath(t, tg, name), o)
}

// next returns the next frame, failing the test after waitTimeout.
func (u *wsUser) next() frame {
	u.t.Helper()
	f, err := u.read()
	if err != nil {
		u.t.Fatalf("%s: read: %v", u.name, err)
	}
	return f
}

func (u *wsUser) read() (frame, error) { return u.readWithin(waitTimeout) }

// readWithin reads the next frame, waiting at most d.
func (u *wsUser) readWithin(d time.Duration) (frame, error) {
	if len(u.queued) == 0 {
		data, err := u.message(d)
		if err != nil {
			return nil, err
		}
		u.queued = bytes.Split(data, []byte("\n"))
	}
	data := u.queued[0]
	u.queued = u.queued[1:]
	return u.parse(data), nil
}

// message reads the next WebSocket message as it came, waiting at most d.
func (u *wsUser) message(d time.Duration) ([]byte, error) {
	u.conn.SetReadDeadline(time.Now().Add(d))
	data, _, err := nodetest.ReadServerData(u.rw)
	return data, err
}

// parse decodes one event, checking what every event has.
func (u *wsUser) parse(data []byte) frame {
	u.t.Helper()
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		u.t.Fatalf("%s: frame %q is not JSON: %v", u.name, data, err)
	}
	if _, ok := f["timestamp"]; !ok {
		u.t.Errorf("%s: frame %s has no timestamp", u.name, data)
	}
	if ts, err := time.Parse(time.RFC3339, f.str("timestamp")); err != nil || ts.Location() != time.UTC {
		u.t.Errorf("%s: timestamp %q is not RFC 3339 UTC", u.name, f.str("timestamp"))
	}
	return f
}

// await skips frames until one satisfies match, and returns it.
func (u *wsUser) await(what string, match func(frame) bool) frame {
	u.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		f := u.next()
		if match(f) {
			return f
		}
	}
	u.t.Fatalf("%s: no %s within %v", u.name, what, waitTimeout)
	return nil
}

// closed reads until the server closes the connection and returns the
// close code and reason.
func (u *wsUser) closed() (ws.StatusCode, string) {
	u.t.Helper()
	for range 100 {
		_, err := u.read()
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		if isTimeoutErr(err) {
			u.t.Fatalf("%s: no close frame within %v", u.name, waitTimeout)
		}
		if err != nil {
			u.t.Fatalf("%s: read: %v, want a close frame", u.name, err)
		}
	}
	u.t.Fatalf("%s: no close frame after 100 frames", u.name)
	return 0, ""
}

// send writes one text frame.
func (u *wsUser) send(s string) {
	u.t.Helper()
	if err := wsutil.WriteClientText(u.conn, []byte(s)); err != nil {
		u.t.Fatalf("%s: send: %v", u.name, err)
	}
}

// sendJSON writes v as one text frame.
func (u *wsUser) sendJSON(v any) {
	u.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		u.t.Fatalf("marshal: %v", err)
	}
	u.send(string(b))
}

// join joins room and waits for its own room_joined.
func (u *wsUser) join(room string) {
	u.t.Helper()
	u.sendJSON(map[string]string{"type": "join_room", "room": room})
	u.await("room_joined "+room, func(f frame) bool {
		return f.str("type") == "room_joined" && f.str("room") == room && f.str("user_id") == u.welcome.str("user_id")
	})
}

func isType(typ string) func(frame) bool {
	return func(f frame) bool { return f.str("type") == typ }
}

func isMessage(text string) func(frame) bool {
	return func(f frame) bool { return f.str("type") == "message" && f.str("message") == text }
}

func isError(code string) func(frame) bool {
	return func(f frame) bool { return f.str("type") == "error" && f.str("code") == code }
}

// runModes runs fn once per bridge mode.
func runModes(t *testing.T, fn func(t *testing.T, m mode)) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) { fn(t, m) })
	}
}

// runModesAndTLS runs fn once per bridge mode, and once in-process over
// TLS terminated by the node: for the tests of how a connection reads,
// waits and closes, which TLS changes (see tls.go).
func runModesAndTLS(t *testing.T, fn func(t *testing.T, m mode)) {
	runModes(t, fn)
	t.Run(string(overTLS), func(t *testing.T) { fn(t, overTLS) })
}

// tokenFrom mints a token for user with cfg (another secret, or a lifetime
// already over), which the node must refuse.
func tokenFrom(t *testing.T, cfg auth.Config, user string) string {
	t.Helper()
	a, err := auth.New(cfg)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	tok, err := a.Issue(user, false)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return tok
}

// closeCode returns the code of the close frame err reports, if it does.
func closeCode(err error) (ws.StatusCode, bool) {
	var ce wsutil.ClosedError
	if errors.As(err, &ce) {
		return ce.Code, true
	}
	return 0, false
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
