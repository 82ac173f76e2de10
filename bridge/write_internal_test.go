package bridge

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// appendJoined packs events into as few messages as fit within the limit,
// in order, and sends an event over the limit alone.
func TestAppendJoined(t *testing.T) {
	ev := func(n int) []byte { return []byte(`"` + strings.Repeat("e", n-2) + `"`) }
	for _, tc := range []struct {
		name   string
		sizes  []int
		limit  int
		groups []int // events per message
	}{
		{"one event", []int{10}, 100, []int{1}},
		{"all fit", []int{10, 10, 10}, 100, []int{3}},
		{"exactly the limit", []int{10, 10}, 21, []int{2}},
		{"one byte over", []int{10, 10}, 20, []int{1, 1}},
		{"split in order", []int{40, 40, 40, 10}, 100, []int{2, 2}},
		{"an event over the limit goes alone", []int{10, 300, 10}, 100, []int{1, 1, 1}},
		{"big payloads", []int{60 << 10, 60 << 10}, 64 << 10, []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var frames [][]byte
			for i, n := range tc.sizes {
				f := ev(n)
				f[1] = byte('a' + i) // tell them apart
				frames = append(frames, f)
			}
			r := bytes.NewReader(appendJoined(nil, frames, tc.limit))
			next := 0
			for i, k := range tc.groups {
				h, err := ws.ReadHeader(r)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if h.OpCode != ws.OpText || !h.Fin || h.Masked {
					t.Errorf("message %d: header %+v; want a final, unmasked text frame", i, h)
				}
				p := make([]byte, h.Length)
				if _, err := io.ReadFull(r, p); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				want := bytes.Join(frames[next:next+k], []byte("\n"))
				if !bytes.Equal(p, want) {
					t.Errorf("message %d: %d bytes starting %.12q; want %d bytes starting %.12q", i, len(p), p, len(want), want)
				}
				next += k
			}
			if r.Len() != 0 {
				t.Errorf("%d bytes after %d messages; want none", r.Len(), len(tc.groups))
			}
		})
	}
}

// BenchmarkClientRead is what a client pays per event to take a burst of 64
// off the wire with a mainstream library's reader (gobwas/ws's wsutil):
// one WebSocket message per event (plain) or the events joined in one
// message (tertulia.v1), then split; json adds encoding/json's decoding of
// each event, which the two formats share.
func BenchmarkClientRead(b *testing.B) {
	const burst = 64
	ev := []byte(`{"type":"message","timestamp":"2026-12-01T08:00:00.123Z","sender":"u42","user_id":"u42","room":"bench","message":"1764144000000000000 42 ...........................................","offset":1234,"epoch":"e1"}`)
	frames := make([][]byte, burst)
	for i := range frames {
		frames[i] = ev
	}
	var plain []byte
	for _, f := range frames {
		plain = append(appendHeader(plain, ws.OpText, len(f)), f...)
	}
	wires := []struct {
		name string
		wire []byte
	}{
		{"plain", plain},
		{"tertulia.v1", appendJoined(nil, frames, 64<<10)},
	}
	for _, decode := range []bool{false, true} {
		for _, w := range wires {
			name := w.name
			if decode {
				name += "+json"
			}
			b.Run(name, func(b *testing.B) {
				src := bytes.NewReader(w.wire)
				rd := wsutil.Reader{Source: src, State: ws.StateClientSide}
				var msg bytes.Buffer
				var f struct {
					Type, Timestamp, Sender, UserID, Room, Message, Epoch string
					Offset                                                int64
				}
				b.ReportAllocs()
				for b.Loop() {
					src.Reset(w.wire)
					for n := 0; n < burst; {
						if _, err := rd.NextFrame(); err != nil {
							b.Fatal(err)
						}
						msg.Reset()
						if _, err := msg.ReadFrom(&rd); err != nil {
							b.Fatal(err)
						}
						for line := range bytes.SplitSeq(msg.Bytes(), []byte("\n")) {
							if decode {
								if err := json.Unmarshal(line, &f); err != nil {
									b.Fatal(err)
								}
							}
							n++
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/event")
			})
		}
	}
}

// The upgrade's answer that goes out with the welcome leaves the ping timer
// set for the first ping: its run at headHold, with nothing left to send,
// would have cost every new connection a goroutine.
func TestHeadSentWithWelcomeDisarmsTheHeadTimer(t *testing.T) {
	b := &Bridge{cfg: Config{PingInterval: time.Hour}.withDefaults()}
	server, client := net.Pipe()
	defer client.Close()
	c := newConn(b, server, nil, []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"))
	defer c.ping.Stop()
	go io.Copy(io.Discard, client)
	if err := c.WriteFrames([][]byte{[]byte(`{"type":"system"}`)}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	armed := c.headTimer
	c.mu.Unlock()
	if armed {
		t.Error("the head went out with the welcome, but the timer still waits to send it at headHold")
	}
	server.Close()
}
