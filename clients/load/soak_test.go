package load_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tertulia/tertulia/clients/load"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// A tiny soak: connections of both transports go round connect, join,
// chat, leave, close as many users; samples are read from the node's
// /metrics before, during and after, and no connection is left at the end.
// (make soak is the real one; the node shares this process, so memory and
// goroutines are the test's too and are not judged here.)
func TestSoakChurnsAndSamples(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()}) // as make soak runs it
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := load.Soak(ctx, load.SoakConfig{
		HTTPAddr: srv.HTTPAddr, GRPCAddr: srv.GRPCAddr, JWTSecret: nodetest.Secret,
		Users: 40, Live: 10, Rooms: 3, Hold: 200 * time.Millisecond, MessageEvery: 50 * time.Millisecond,
		Warmup: 300 * time.Millisecond, Duration: 1500 * time.Millisecond, Every: 500 * time.Millisecond, Settle: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cycles < 10 || res.Failed != 0 {
		t.Errorf("%d cycles, %d failed (%s); want at least 10, none failed", res.Cycles, res.Failed, res.FirstFailure)
	}
	if res.Sent == 0 || res.Received < res.Sent {
		t.Errorf("%d messages sent, %d received; want some, each received by its sender at least", res.Sent, res.Received)
	}
	if len(res.During) == 0 || res.Peak.Connections == 0 || res.Baseline.Goroutines == 0 {
		t.Errorf("samples: baseline %v, %d during, peak %v; want readings", res.Baseline, len(res.During), res.Peak)
	}
	if res.After.Connections != 0 {
		t.Errorf("%v connections after the soak, want 0", res.After.Connections)
	}
}

// The thresholds: back near the baseline passes; a leak of goroutines or
// heap, or connections left, is named.
func TestSoakThresholds(t *testing.T) {
	base := load.Sample{RSSBytes: 20 << 20, HeapBytes: 4 << 20, Goroutines: 16}
	peak := load.Sample{RSSBytes: 200 << 20, HeapBytes: 80 << 20, Goroutines: 3000, Connections: 1000}
	for _, tc := range []struct {
		name  string
		after load.Sample
		want  []string // words each problem must hold, in order; none: passes
	}{
		{"back", load.Sample{RSSBytes: 60 << 20, HeapBytes: 8 << 20, Goroutines: 20}, nil},
		{"goroutines", load.Sample{RSSBytes: 60 << 20, HeapBytes: 8 << 20, Goroutines: 1016}, []string{"goroutines"}},
		{"heap", load.Sample{RSSBytes: 60 << 20, HeapBytes: 40 << 20, Goroutines: 20}, []string{"heap"}},
		{"rss", load.Sample{RSSBytes: 190 << 20, HeapBytes: 8 << 20, Goroutines: 20}, []string{"RSS"}},
		{"connections", load.Sample{RSSBytes: 60 << 20, HeapBytes: 8 << 20, Goroutines: 20, Connections: 3}, []string{"connections"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := load.Thresholds{}.Check(base, peak, tc.after)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d naming %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %q, want it to name %q", got[i], w)
				}
			}
		})
	}
}
