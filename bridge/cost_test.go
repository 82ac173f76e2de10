package bridge_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// BenchmarkIdleConnectionCost opens idle WebSocket sessions in-process and
// reports what each costs: goroutines and their stacks (server side only:
// the test's clients run none) and heap (both sides: an upper bound for the
// server's share; a heap profile shows the hijacked connection's 4 KiB read
// buffer and net/http's 2 KiB response buffer as most of the server's).
// Run it with -benchtime 1x; b.N is not used.
func BenchmarkIdleConnectionCost(b *testing.B) {
	const conns = 1000
	srv := nodetest.Start(b, node.Config{Limits: nodetest.Unlimited()})
	// One user on every connection: only the first is announced to the
	// others, so the connections stay idle.
	url := "ws://" + srv.HTTPAddr + "/api/v1/ws/authenticated?token=" + srv.Token(b, "idle", false)
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
		var open []interface{ Close() error }
		for range conns {
			c, _, _, err := ws.Dialer{Timeout: waitTimeout}.Dial(context.Background(), url)
			if err != nil {
				b.Fatalf("dial: %v", err)
			}
			open = append(open, c)
		}
		// Let every welcome be written and every writer goroutine end.
		time.Sleep(500 * time.Millisecond)
		g1, h1, s1 := measure()
		b.ReportMetric(float64(g1-g0)/conns, "goroutines/conn")
		b.ReportMetric(float64(h1-h0)/conns, "heap-bytes/conn")
		b.ReportMetric(float64(s1-s0)/conns, "stack-bytes/conn")
		for _, c := range open {
			c.Close()
		}
	}
}
