package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tertulia/tertulia/bridge"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// BenchmarkEncodeFrame is the JSON wire format's cost per event: the hub
// pays it once per event for every browser session.
func BenchmarkEncodeFrame(b *testing.B) {
	f := &chatv1.ServerFrame{Timestamp: timestamppb.New(time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)),
		Event: &chatv1.ServerFrame_Message{Message: &chatv1.Message{Sender: "u42", UserId: "u42", Room: "bench",
			Message: "1764144000000000000 42 ..........................................."}}}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		p, err := bridge.EncodeFrame(f)
		if err != nil {
			b.Fatal(err)
		}
		n = len(p)
	}
	b.ReportMetric(float64(n), "bytes/frame")
}

// BenchmarkFanoutWS publishes b.N lobby messages through a real node to subs
// WebSocket clients on loopback and waits until every client has read every
// message: the whole path, bridge writes included (the load tool measures
// the same with pinned processes and latencies).
func BenchmarkFanoutWS(b *testing.B) {
	const window = 1024
	for _, subs := range []int{10, 200} {
		b.Run("subs="+strconv.Itoa(subs), func(b *testing.B) {
			// Every client is the one user "bench": its cap is off here.
			lim := nodetest.Unlimited()
			lim.ConnsPerUser = hub.Off
			srv := nodetest.Start(b, node.Config{Limits: lim})
			tok := srv.Token(b, "bench", false)
			u := "ws://" + srv.HTTPAddr + "/api/v1/ws/authenticated?token=" + url.QueryEscape(tok)
			var got atomic.Int64
			read := make([]atomic.Int64, subs) // messages read by each client
			var wg sync.WaitGroup
			conns := make([]net.Conn, 0, subs+1)
			b.Cleanup(func() {
				for _, c := range conns {
					c.Close()
				}
				wg.Wait()
			})
			dial := func() (net.Conn, *bufio.Reader) {
				c, br, _, err := ws.Dial(context.Background(), u)
				if err != nil {
					b.Fatalf("dial: %v", err)
				}
				if br == nil {
					br = bufio.NewReader(c)
				}
				conns = append(conns, c)
				return c, br
			}
			for i := range subs {
				_, br := dial()
				wg.Go(func() { countMessages(br, &got, &read[i]) })
			}
			pub, pbr := dial()
			wg.Go(func() { io.Copy(io.Discard, pbr) })
			time.Sleep(200 * time.Millisecond) // welcomes and the user_joined are read
			slowest := func() int64 {
				m := read[0].Load()
				for i := range read {
					m = min(m, read[i].Load())
				}
				return m
			}
			frame := []byte(`{"type":"message","message":"0123456789012345678901234567890123456789012345678901234567890123"}`)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				// At most window messages in flight to the slowest client:
				// unpaced, the hub would rightly cut it as a slow consumer.
				for int64(i-window) > slowest() {
					time.Sleep(50 * time.Microsecond)
				}
				if err := wsutil.WriteClientText(pub, frame); err != nil {
					b.Fatalf("publish: %v", err)
				}
			}
			want := int64(b.N) * int64(subs)
			deadline := time.Now().Add(30 * time.Second)
			for got.Load() < want && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
			took := time.Since(start)
			b.StopTimer()
			if n := got.Load(); n < want {
				b.Fatalf("got %d messages read, want %d", n, want)
			}
			b.ReportMetric(float64(want)/took.Seconds(), "deliveries/s")
		})
	}
}

// countMessages reads server frames until the connection ends, counting
// chat messages in n and mine.
func countMessages(br *bufio.Reader, n, mine *atomic.Int64) {
	typeMessage := []byte(`"type":"message"`)
	var buf []byte
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		if int64(cap(buf)) < h.Length {
			buf = make([]byte, h.Length)
		}
		data := buf[:h.Length]
		if _, err := io.ReadFull(br, data); err != nil {
			return
		}
		if h.OpCode == ws.OpText && bytes.Contains(data, typeMessage) {
			n.Add(1)
			mine.Add(1)
		}
	}
}
