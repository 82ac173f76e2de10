package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// openIdle opens n WebSocket sessions on tg, each for a distinct user (as
// issue 10's load does), and waits for each one's welcome, so that every
// connection counted is an open session, not one being refused.
func openIdle(tb testing.TB, tg *target, n int, dial idleDial) []net.Conn {
	tb.Helper()
	open := make([]net.Conn, 0, n)
	tb.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	for i := range n {
		c, err := dial(tg.wsBase, tg.tls, tg.node.Token(tb, idleUser(i), false))
		if err != nil {
			tb.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
	}
	return open
}

func idleUser(i int) string { return "idle" + strconv.Itoa(i) }

// idleDial opens a WebSocket session on base (ws:// or wss://, with
// tlsConfig) with token, and waits for its welcome.
type idleDial func(base string, tlsConfig *tls.Config, token string) (net.Conn, error)

// dialIdle is an idleDial, a browser's.
func dialIdle(base string, tlsConfig *tls.Config, token string) (net.Conn, error) {
	c, br, _, err := ws.Dialer{Timeout: waitTimeout, TLSConfig: tlsConfig}.Dial(context.Background(),
		base+"/api/v1/ws/authenticated?token="+token)
	if err != nil {
		return nil, err
	}
	var r io.Reader = c
	if br != nil { // the welcome came with the upgrade's answer
		r = io.MultiReader(br, c)
	}
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	h, err := ws.ReadHeader(r)
	if err != nil || h.OpCode != ws.OpText {
		c.Close()
		return nil, fmt.Errorf("got frame %v (err %v), want the welcome", h.OpCode, err)
	}
	c.SetReadDeadline(time.Time{})
	return c, nil
}

// settle waits until the goroutines are at most want, or a few seconds
// have passed, and returns their number: writers and timers end once the
// welcomes are out.
func settle(want int) int {
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

// steady waits until the number of goroutines has not changed for 200 ms,
// or a few seconds have passed, and returns it.
func steady() int {
	deadline := time.Now().Add(waitTimeout)
	g, same := runtime.NumGoroutine(), 0
	for same < 4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == g {
			same++
		} else {
			g, same = n, 0
		}
	}
	return g
}

// dialPipelined is an idleDial that sends a ping frame right behind the
// upgrade request, in the same write (over TLS, the same record), as a
// client may that does not wait for the answer.
func dialPipelined(base string, tlsConfig *tls.Config, token string) (net.Conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: waitTimeout}
	var c net.Conn
	if u.Scheme == "wss" {
		c, err = tls.DialWithDialer(d, "tcp", u.Host, tlsConfig)
	} else {
		c, err = d.Dial("tcp", u.Host)
	}
	if err != nil {
		return nil, err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET /api/v1/ws/authenticated?token=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", token, u.Host)
	ws.WriteFrame(&req, ws.MaskFrameInPlace(ws.NewPingFrame([]byte("pipelined"))))
	c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Write(req.Bytes()); err != nil {
		c.Close()
		return nil, err
	}
	// The answer, then the welcome and the pong, in either order.
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("upgrade: %v, %v; want 101", resp, err)
	}
	for got := 0; got < 2; got++ {
		h, err := ws.ReadHeader(br)
		if err == nil {
			_, err = io.CopyN(io.Discard, br, h.Length)
		}
		if err != nil || h.OpCode != ws.OpText && h.OpCode != ws.OpPong {
			c.Close()
			return nil, fmt.Errorf("got frame %v (err %v), want the welcome and a pong", h.OpCode, err)
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// idleTarget runs a node for idle connections to open on over scheme: ws
// (plaintext) or wss (TLS terminated by the node).
func idleTarget(tb testing.TB, scheme string) *target {
	cfg := node.Config{Limits: nodetest.Unlimited()}
	if scheme == "wss" {
		return startTLS(tb, cfg)
	}
	srv := nodetest.Start(tb, cfg)
	return &target{node: srv, wsBase: "ws://" + srv.HTTPAddr, host: srv.HTTPAddr}
}

// schemes are the ways a browser reaches the bridge: plaintext, and TLS
// terminated by the node (see tls.go).
var schemes = []string{"ws", "wss"}

// TestIdleConnection checks that an idle WebSocket session holds one
// goroutine, the one that waits for its frames (see Conn.Serve), over
// plaintext and over TLS alike: a second one per connection, such as a
// set-up goroutine left waiting or a worker parked in a TLS read, doubles
// what an idle connection costs. Goroutine counts, not timings: the test
// holds under load.
func TestIdleConnection(t *testing.T) {
	const conns = 40
	for _, scheme := range schemes {
		for name, dial := range map[string]idleDial{"": dialIdle, "/a frame with the upgrade": dialPipelined} {
			t.Run(scheme+name, func(t *testing.T) {
				tg := idleTarget(t, scheme)
				// The growth from a first batch of connections to a
				// second one: what the node starts once (its sweeper,
				// its waiting workers) or another test left winding
				// down is in both counts, and cancels out.
				openIdle(t, tg, conns, dial)
				g1 := steady()
				openIdle(t, tg, conns, dial)
				const most = conns + conns/4
				if g := settle(g1+most) - g1; g > most {
					t.Errorf("%d more idle %s connections hold %d more goroutines, want about one each", conns, scheme, g)
				}
			})
		}
	}
}

// BenchmarkIdleConnectionCost opens idle WebSocket sessions on a node in
// this process, over plaintext and over TLS, from clients in a child
// process, and reports what each costs the server: goroutines, their
// stacks, heap, and resident memory (on Linux; what the runtime keeps of
// the node's set-up before the first connection blurs it). Run it with
// -benchtime 1x; b.N is not used.
func BenchmarkIdleConnectionCost(b *testing.B) {
	const conns = 1000
	for _, scheme := range schemes {
		b.Run(scheme, func(b *testing.B) {
			tg := idleTarget(b, scheme)
			measure := func() (goroutines int, heap, stack, rss uint64) {
				runtime.GC()
				time.Sleep(100 * time.Millisecond)
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse, residentBytes()
			}
			g0, h0, s0, r0 := measure()
			for range b.N {
				stop := idleClients(b, tg, conns)
				settle(g0 + conns + conns/100)
				g1, h1, s1, r1 := measure()
				b.ReportMetric(float64(g1-g0)/conns, "goroutines/conn")
				b.ReportMetric(float64(h1-h0)/conns, "heap-bytes/conn")
				b.ReportMetric(float64(s1-s0)/conns, "stack-bytes/conn")
				if r0 > 0 && r1 > 0 {
					b.ReportMetric((float64(r1)-float64(r0))/conns, "rss-bytes/conn")
				}
				stop()
			}
		})
	}
}

// residentBytes is this process's resident set size (Linux), or 0.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}

// idleClientsEnv, set to a node's ws:// or wss:// base, makes the test
// binary a process of idle clients (see TestMain): it reads tokens from
// stdin, one a line, up to an empty line, opens a session with each, says
// "ready" on stdout, and holds them until stdin ends.
const idleClientsEnv = "TERTULIA_IDLE_CLIENTS"

// idleClients opens n idle sessions on tg from a child process, so that
// none of the clients' memory is in this process's counts, and returns
// what ends them.
func idleClients(b *testing.B, tg *target, n int) (stop func()) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), idleClientsEnv+"="+tg.wsBase)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop = func() {
		in.Close()
		cmd.Wait()
	}
	for i := range n {
		fmt.Fprintln(in, tg.node.Token(b, idleUser(i), false))
	}
	fmt.Fprintln(in)
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		stop()
		b.Fatalf("idle clients: %q, %v; want ready", line, err)
	}
	return stop
}

// runIdleClients is the child process of idleClients; it returns its exit
// status.
func runIdleClients(base string) int {
	// The child measures nothing and trusts the node it was pointed at.
	cfg := &tls.Config{InsecureSkipVerify: true}
	var open []net.Conn
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() && in.Text() != "" {
		c, err := dialIdle(base, cfg, in.Text())
		if err != nil {
			fmt.Fprintf(os.Stderr, "idle client %d: %v\n", len(open), err)
			return 1
		}
		open = append(open, c)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range open {
		c.Close()
	}
	return 0
}
