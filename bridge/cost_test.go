package bridge_test

import (
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// openIdle opens n WebSocket sessions on srv, each for a distinct user (as
// issue 10's load does), and waits for each one's welcome, so that every
// connection counted is an open session, not one being refused.
func openIdle(tb testing.TB, srv *nodetest.Server, n int) []net.Conn {
	tb.Helper()
	open := make([]net.Conn, 0, n)
	tb.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	for i := range n {
		url := "ws://" + srv.HTTPAddr + "/api/v1/ws/authenticated?token=" + srv.Token(tb, "idle"+strconv.Itoa(i), false)
		c, br, _, err := ws.Dialer{Timeout: waitTimeout}.Dial(context.Background(), url)
		if err != nil {
			tb.Fatalf("dial: %v", err)
		}
		open = append(open, c)
		var r io.Reader = c
		if br != nil { // the welcome came with the upgrade's answer
			r = io.MultiReader(br, c)
		}
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		h, err := ws.ReadHeader(r)
		if err != nil || h.OpCode != ws.OpText {
			tb.Fatalf("connection %d: got frame %v (err %v), want the welcome", i, h.OpCode, err)
		}
		c.SetReadDeadline(time.Time{})
	}
	return open
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

// TestIdleConnection checks that an idle WebSocket session holds one
// goroutine, the one that waits for its frames (see Conn.Serve): a second
// one per connection, such as a set-up goroutine left waiting, doubles
// what an idle connection costs. Goroutine counts, not timings: the test
// holds under load.
func TestIdleConnection(t *testing.T) {
	const conns = 40
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	// The growth from a first batch of connections to a second one: what
	// the node starts once (its sweeper, its waiting workers) or another
	// test left winding down is in both counts, and cancels out.
	openIdle(t, srv, conns)
	g1 := steady()
	openIdle(t, srv, conns)
	const most = conns + conns/4
	if g := settle(g1+most) - g1; g > most {
		t.Errorf("%d more idle connections hold %d more goroutines, want about one each", conns, g)
	}
}

// BenchmarkIdleConnectionCost opens idle WebSocket sessions in-process and
// reports what each costs: goroutines and their stacks (server side only:
// the test's clients run none) and heap (both sides: an upper bound for the
// server's share). Run it with -benchtime 1x; b.N is not used.
func BenchmarkIdleConnectionCost(b *testing.B) {
	const conns = 1000
	srv := nodetest.Start(b, node.Config{Limits: nodetest.Unlimited()})
	measure := func() (goroutines int, heap, stack uint64) {
		runtime.GC()
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse
	}
	g0, h0, s0 := measure()
	for range b.N {
		open := openIdle(b, srv, conns)
		settle(g0 + conns + conns/100)
		g1, h1, s1 := measure()
		b.ReportMetric(float64(g1-g0)/conns, "goroutines/conn")
		b.ReportMetric(float64(h1-h0)/conns, "heap-bytes/conn")
		b.ReportMetric(float64(s1-s0)/conns, "stack-bytes/conn")
		for _, c := range open {
			c.Close()
		}
	}
}
