package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
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

// A write that fails (here: times out on a browser that reads nothing, so
// a frame may be cut short) ends the connection at once, whichever write
// it was: a batch, a ping or the pong to the browser's ping. Nothing more
// is written into the broken frame, WriteFrames says ErrClosed so that the
// session ends with a reason, and the reader wakes up rather than wait for
// the idle timeout (two hours here).
func TestFailedWriteEndsTheConnection(t *testing.T) {
	// fill blocks the socket: the browser reads nothing, and its buffers
	// and the server's are small.
	fill := func(c *Conn) {
		c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		c.nc.Write(make([]byte, 4<<20))
	}
	for _, tc := range []struct {
		name    string
		provoke func(t *testing.T, c *Conn, client net.Conn)
	}{
		{"batch", func(t *testing.T, c *Conn, _ net.Conn) {
			if err := c.WriteFrames([][]byte{bytes.Repeat([]byte("x"), 4<<20)}); err == nil {
				t.Fatal("a 4 MiB batch to a browser that reads nothing went out")
			}
		}},
		{"ping", func(t *testing.T, c *Conn, _ net.Conn) { fill(c); c.sendPing() }},
		{"pong", func(t *testing.T, c *Conn, client net.Conn) {
			fill(c)
			if err := wsutil.WriteClientMessage(client, ws.OpPing, nil); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Bridge{cfg: Config{PingInterval: time.Hour, WriteTimeout: 200 * time.Millisecond, CloseTimeout: 200 * time.Millisecond}.withDefaults()}
			server, client := tcpPair(t)
			c := newConn(b, server, nil, nil)
			defer c.ping.Stop()
			read := make(chan error, 1)
			go func() { _, err := c.readMessage(c.idleTimeout(), time.Time{}, reasonIdle, 1024); read <- err }()

			tc.provoke(t, c, client)
			select {
			case err := <-read:
				if err == nil {
					t.Error("the reader returned a message")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the reader still waits 5s after the failed write")
			}
			if err := c.WriteFrames([][]byte{[]byte(`{}`)}); !errors.Is(err, ErrClosed) {
				t.Errorf("WriteFrames after the failed write: %v, want ErrClosed", err)
			}
			if c.CloseCode() == 0 {
				t.Error("the connection does not read as closed")
			}
		})
	}
}

// tcpPair returns the two ends of a loopback TCP connection with small
// buffers: the server's to write, the client's to read.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	client.(*net.TCPConn).SetReadBuffer(4 << 10)
	server.(*net.TCPConn).SetWriteBuffer(4 << 10)
	return server, client
}
