package grpcapi_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	client "github.com/tertulia/tertulia/clients/go"
	"github.com/tertulia/tertulia/server/grpcapi"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestMain(m *testing.M) { nodetest.VerifyTestMain(m) }

// message is a room message with a 64-byte payload, as the load tool sends.
var message = &hub.Event{Kind: hub.KindMessage, Time: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC),
	Room: "bench", Sender: "u42", UserID: "u42",
	Message: "1764144000000000000 42 ..........................................."}

// BenchmarkEncodeProto is the gRPC wire format's cost per event: the hub
// pays it once per event, whatever the number of recipients.
func BenchmarkEncodeProto(b *testing.B) {
	b.ReportAllocs()
	var n int
	for b.Loop() {
		p, err := proto.Marshal(grpcapi.FrameFromEvent(message))
		if err != nil {
			b.Fatal(err)
		}
		n = len(p)
	}
	b.ReportMetric(float64(n), "bytes/frame")
}

// BenchmarkFanoutGRPC publishes b.N lobby messages through a real node to
// subs gRPC streams on loopback and waits until every stream has read every
// message. Allocations are counted on both sides (one process).
func BenchmarkFanoutGRPC(b *testing.B) {
	const window = 1024
	for _, subs := range []int{10, 200} {
		b.Run("subs="+strconv.Itoa(subs), func(b *testing.B) {
			// All the streams are one user's, on one connection: the caps
			// on both are off here.
			lim := nodetest.Unlimited()
			lim.ConnsPerUser, lim.GRPCStreamsPerConn = hub.Off, 2*subs
			srv := nodetest.Start(b, node.Config{Limits: lim})
			c, err := client.Dial(srv.GRPCAddr, client.WithToken(srv.Token(b, "bench", false)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			var got atomic.Int64
			read := make([]atomic.Int64, subs) // messages read by each stream
			var wg sync.WaitGroup
			b.Cleanup(wg.Wait) // last: after every session is closed
			for i := range subs {
				s, err := c.Connect(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				wg.Go(func() {
					for f := range s.Events() {
						if f.GetMessage() != nil {
							got.Add(1)
							read[i].Add(1)
						}
					}
				})
			}
			pub, err := c.Connect(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { pub.Close() })
			wg.Go(func() {
				for range pub.Events() {
				}
			})
			time.Sleep(200 * time.Millisecond) // welcomes are read
			slowest := func() int64 {
				m := read[0].Load()
				for i := range read {
					m = min(m, read[i].Load())
				}
				return m
			}
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				// At most window messages in flight to the slowest stream:
				// an unpaced publisher would otherwise fill its queue, and
				// the hub rightly disconnects it as a slow consumer.
				for int64(i-window) > slowest() {
					time.Sleep(50 * time.Microsecond)
				}
				if err := pub.Send("", message.Message); err != nil {
					b.Fatal(err)
				}
			}
			want := int64(b.N) * int64(subs)
			deadline := time.Now().Add(30 * time.Second)
			for got.Load() < want && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
			took := time.Since(start)
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			if n := got.Load(); n < want {
				b.Fatalf("got %d messages read, want %d", n, want)
			}
			b.ReportMetric(float64(want)/took.Seconds(), "deliveries/s")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(want), "allocs/delivery")
		})
	}
}
