package load

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tertulia/tertulia/bridge"
)

const (
	testWelcome = `{"type":"system","timestamp":"2026-11-26T06:40:00.123Z","message":"Welcome u1","user_id":"u1","connection_id":"c1","inbox":{"offset":0,"epoch":""}}`
	testJoined  = `{"type":"room_joined","timestamp":"2026-11-26T06:40:00.123Z","id":"j1","message":"u1 joined room bench","user_id":"u1","username":"u1","room":"bench","offset":0,"epoch":"e1"}`
	testOther   = `{"type":"room_joined","timestamp":"2026-11-26T06:40:00.123Z","message":"u2 joined room bench","user_id":"u2","username":"u2","room":"bench"}`
	testRefusal = `{"type":"error","timestamp":"2026-11-26T06:40:00.123Z","message":"message not sent: the broker is unavailable","code":"unavailable"}`
)

// testMessage is a room message carrying a payload stamped now.
func testMessage(seq uint64) string {
	p := stampPayload(make([]byte, 0, PayloadSize), time.Now(), 0, seq)
	return `{"type":"message","timestamp":"2026-11-26T06:40:00.123Z","message":"` + string(p) + `","sender":"u2","user_id":"u2","room":"bench","offset":1,"epoch":"e1"}`
}

// A frame may carry several events, one a line; a frame of one event, with
// or without a newline, is read as before.
func TestScanFrameSplitsEvents(t *testing.T) {
	for _, tc := range []struct {
		name              string
		frames            []string
		ready             bool
		messages, refused int64
	}{
		{"one event a frame", []string{testWelcome, testJoined, testOther, testMessage(1), testRefusal}, true, 1, 1},
		{"all in one frame", []string{strings.Join([]string{testWelcome, testJoined, testOther, testMessage(1), testMessage(2), testRefusal}, "\n")}, true, 2, 1},
		{"trailing newlines", []string{testWelcome + "\n", testJoined + "\r\n", testMessage(1) + "\n" + testMessage(2) + "\n\n"}, true, 2, 0},
		{"no welcome first", []string{testJoined, testWelcome}, true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMember(nil, "j1")
			for i, f := range tc.frames {
				scanFrame(m, []byte(f), i == 0, time.Now())
			}
			if m.isReady != tc.ready || m.received() != tc.messages || m.refused.Load() != tc.refused {
				t.Errorf("got ready %v, %d messages, %d refused; want %v, %d, %d", m.isReady, m.received(), m.refused.Load(), tc.ready, tc.messages, tc.refused)
			}
			if wantErr := tc.name == "no welcome first"; (m.setupErr != nil) != wantErr {
				t.Errorf("got set-up error %v, want one: %v", m.setupErr, wantErr)
			}
		})
	}
}

// Both WebSocket clients offer tertulia.v1 when asked to (the coder client
// always) and read a server that batches events: every message of a
// batched frame is counted.
func TestClientsReadBatchedFrames(t *testing.T) {
	if Subprotocol != bridge.Subprotocol {
		t.Fatalf("got subprotocol %q, want the bridge's %q", Subprotocol, bridge.Subprotocol)
	}
	protocols := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		protocols <- c.Subprotocol()
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if _, _, err := c.Read(ctx); err != nil { // the join
			return
		}
		for _, f := range []string{
			testWelcome + "\n" + testJoined,
			testOther + "\n" + testMessage(1) + "\n" + testMessage(2) + "\n" + testMessage(3) + "\n",
			testMessage(4),
		} {
			if c.Write(ctx, websocket.MessageText, []byte(f)) != nil {
				return
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	tokens := func(string) (string, error) { return "token", nil }
	for _, d := range []dialer{newWSDialer(addr, tokens, true), newCoderDialer(addr, tokens)} {
		t.Run(d.name(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m := newMember(nil, "j1")
			c, err := d.dial(ctx, "u1", "bench", "j1", m)
			if err != nil {
				t.Fatal(err)
			}
			if p := <-protocols; p != Subprotocol {
				t.Errorf("got subprotocol %q, want %q", p, Subprotocol)
			}
			switch c := c.(type) { // the server closes once it has written all
			case *wsConn:
				<-c.done
			case *coderConn:
				<-c.done
			}
			c.close()
			if got := m.received(); got != 4 {
				t.Errorf("got %d messages, want 4", got)
			}
		})
	}
}

// The hot paths allocate nothing: a room message read by either
// WebSocket client (scanned, not decoded) and a message sent by the own
// client (built in its reused buffer). An allocation here costs every
// delivery or every publish.
func TestHotPathsDoNotAllocate(t *testing.T) {
	m := newMember(new(Histogram), "j1")
	m.isReady, m.joined = true, true
	frame := []byte(testMessage(1) + "\n" + testMessage(2))
	if n := testing.AllocsPerRun(100, func() { scanFrame(m, frame, false, time.Now()) }); n != 0 {
		t.Errorf("scanFrame of a message frame: got %v allocations, want 0", n)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a sink for what is sent
		if s, err := ln.Accept(); err == nil {
			io.Copy(io.Discard, s)
			s.Close()
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &wsConn{nc: nc}
	payload := stampPayload(make([]byte, 0, PayloadSize), time.Now(), 0, 1)
	if n := testing.AllocsPerRun(100, func() { c.send("bench", payload) }); n != 0 {
		t.Errorf("send: got %v allocations, want 0", n)
	}
}

func BenchmarkScanFrame(b *testing.B) {
	m := newMember(new(Histogram), "j1")
	m.isReady, m.joined = true, true
	for _, tc := range []struct {
		name  string
		frame string
	}{{"one", testMessage(1)}, {"batch-of-8", strings.Repeat(testMessage(1)+"\n", 8)}} {
		b.Run(tc.name, func(b *testing.B) {
			frame := []byte(tc.frame)
			b.ReportAllocs()
			for b.Loop() {
				scanFrame(m, frame, false, time.Now())
			}
		})
	}
}
