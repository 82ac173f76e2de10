package web_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	web "github.com/tertulia/tertulia/clients/web"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "copy the rooms screenshot to docs/screenshot.png (the README's)")

// chromiumPath is Debian's chromium, which `make deps` and .ci/run install.
const chromiumPath = "/usr/bin/chromium"

// server is a node serving the pages on a fixed HTTP address, so that it
// can be restarted where the pages expect it.
type server struct {
	addr string
	grpc string // the gRPC listener's address, new on each start
	stop context.CancelFunc
	done chan error
}

// serve starts a dev node with the HTTP port on addr ("127.0.0.1:0" for any).
// Every node uses nodetest.Secret, so tokens survive a restart.
func serve(t *testing.T, addr string) *server {
	t.Helper()
	n, err := node.New(node.Config{
		Dev:             true,
		JWT:             auth.Config{Secret: nodetest.Secret},
		Static:          web.FS(),
		ShutdownSpread:  500 * time.Millisecond,
		ShutdownTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", addr)
	if err != nil {
		gl.Close()
		t.Fatalf("listen %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{addr: hl.Addr().String(), grpc: gl.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- n.Serve(ctx, gl, hl) }()
	return s
}

// shutdown stops the node and waits for it.
func (s *server) shutdown(t *testing.T) {
	t.Helper()
	if s.done == nil {
		return
	}
	s.stop()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("node.Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("node did not stop within 10s")
	}
	s.done = nil
}

// need fails the test with how to install what is missing.
func need(t *testing.T) string {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js) not found: the browser tests need it; run `make deps` (Debian: apt-get install nodejs npm)")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s not found: the browser tests need Debian's chromium; run `make deps` (or .ci/run)", chromiumPath)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core")); err != nil {
		// `make test` runs `make web-deps` first; `go test` alone installs here.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund").CombinedOutput()
		if err != nil {
			t.Fatalf("playwright-core is not installed and `npm ci` failed (run `make web-deps`): %v\n%s", err, out)
		}
	}
	return nodeBin
}

// TestPagesInChromium runs browser_test.mjs against a real node: two users
// chat in a room and privately, see each other online, HTML stays text, the
// pages reconnect by themselves after the server restarts, and after their
// network drops they show what was said meanwhile, once; a page joining a
// room shows its recent history; a burst of messages, which the rooms page
// (tertulia.v1) gets several to a WebSocket message, shows whole and in
// order. The pages reach the node through a proxy
// that can cut their connections (CUT).
func TestPagesInChromium(t *testing.T) {
	nodeBin := need(t)
	srv := serve(t, "127.0.0.1:0")
	defer func() { srv.shutdown(t) }()
	net := startProxy(t, srv.addr)

	shots := t.TempDir()
	env := []string{"BASE_URL=http://" + net.addr(), "SHOTS=" + shots, "PROFILE=" + t.TempDir(), "CHROMIUM=" + chromiumPath}
	runScript(t, nodeBin, "browser_test.mjs", env, func(line string) (string, bool) {
		switch line {
		case "RESTART":
			addr := srv.addr
			srv.shutdown(t)
			srv = serve(t, addr)
			return "RESTARTED", true
		case "CUT":
			net.cut(true)
			sayWhileAway(t, srv)
			net.up()
			return "CUT-DONE", true
		case "BURST":
			sayBurst(t, srv)
			return "BURST-DONE", true
		}
		return "", false
	})
	for _, name := range []string{"rooms-alice.png", "rooms-bob.png", "rooms-alice-after-restart.png", "guest.png"} {
		if fi, err := os.Stat(filepath.Join(shots, name)); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s missing: %v", name, err)
		}
	}
	if *updateScreenshot {
		b, err := os.ReadFile(filepath.Join(shots, "rooms-bob.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("../../docs", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("../../docs/screenshot.png", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sayWhileAway has dave say five things in lounge and send alice three
// private messages over gRPC, each acknowledged (logged) before it returns.
func sayWhileAway(t *testing.T, srv *server) {
	t.Helper()
	dave := daveInLounge(t, srv)
	defer dave.Cut()
	frames := make([]*chatv1.ClientFrame, 0, 8)
	for i := range 5 {
		frames = append(frames, nodetest.RoomMessage(fmt.Sprintf("m%d", i), "lounge", fmt.Sprintf("while away %d", i)))
	}
	for i := range 3 {
		frames = append(frames, nodetest.PrivateMessage(fmt.Sprintf("p%d", i), "alice", fmt.Sprintf("psst %d", i)))
	}
	for _, f := range frames {
		dave.Send(f)
		dave.Await("ack "+f.Id, nodetest.IsAck(f.Id))
	}
}

// burstSize is how many messages sayBurst sends: within a new connection's
// burst allowance (40), so that none is refused as rate_limited.
const burstSize = 30

// sayBurst has dave send burstSize messages to lounge back to back, and
// waits for each one's ack: the pages' writers find several queued at once.
func sayBurst(t *testing.T, srv *server) {
	t.Helper()
	dave := daveInLounge(t, srv)
	defer dave.Cut()
	for i := range burstSize {
		dave.Send(nodetest.RoomMessage(fmt.Sprintf("b%d", i), "lounge", fmt.Sprintf("burst %02d", i)))
	}
	for i := range burstSize {
		dave.Await(fmt.Sprintf("ack b%d", i), nodetest.IsAck(fmt.Sprintf("b%d", i)))
	}
}

// daveInLounge opens a gRPC session for dave, in room lounge.
func daveInLounge(t *testing.T, srv *server) *nodetest.Peer {
	t.Helper()
	a, err := auth.New(auth.Config{Secret: nodetest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tok, err := a.Issue("dave", false)
	if err != nil {
		t.Fatal(err)
	}
	dave := nodetest.Open(t, srv.grpc, tok, "dave")
	dave.JoinFrom("lounge", nil, 0)
	return dave
}
