package bridge_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws/wsutil"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// A burst of room messages reaches a tertulia.v1 client in fewer WebSocket
// messages than events, each message the events written together joined
// with '\n', none longer than MaxFrameBytes, every event whole and in
// order; a plain client in the same room gets one JSON object per message,
// as the seed sent them.
//
// The burst comes in one TCP write, so the bridge hands it to the core in
// one go, and each event is queued for three writers (the sender's and the
// two receivers'): a writer busy in its socket write finds several queued
// when it comes back. The test needs one such batch in a hundred events.
func TestBatchedFrames(t *testing.T) {
	const (
		burst    = 100
		maxFrame = 2048 // a few events per message, so the bound is met often
		room     = "batch"
	)
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{Limits: nodetest.Unlimited()}, bridge.Config{MaxFrameBytes: maxFrame})
		v1 := connect(t, tg, "v1", authPath(t, tg, "vera"),
			dialOpts{protocols: []string{bridge.Subprotocol}})
		if v1.proto != bridge.Subprotocol {
			t.Fatalf("server chose subprotocol %q, want %q", v1.proto, bridge.Subprotocol)
		}
		plain := login(t, tg, "pablo")
		sender := login(t, tg, "sara")
		v1.join(room)
		plain.join(room)
		sender.join(room)
		for _, u := range []*wsUser{v1, plain} {
			u.await("sara's room_joined", func(f frame) bool { return f.str("type") == "room_joined" && f.str("user_id") == "sara" })
			u.queued = nil // what came with it precedes the burst
		}

		var frames bytes.Buffer
		for i := range burst {
			b, _ := json.Marshal(map[string]string{"type": "message", "room": room, "message": burstText(i)})
			wsutil.WriteClientText(&frames, b)
		}
		if _, err := sender.conn.Write(frames.Bytes()); err != nil {
			t.Fatalf("send the burst: %v", err)
		}

		v1Msgs := readBurst(t, v1, burst, func(data []byte) {
			if len(data) > maxFrame && bytes.IndexByte(data, '\n') >= 0 {
				t.Errorf("v1: a message of %d bytes joins several events; want at most %d", len(data), maxFrame)
			}
		})
		if v1Msgs >= burst {
			t.Errorf("v1: %d events came in %d WebSocket messages; want fewer messages than events", burst, v1Msgs)
		}
		plainMsgs := readBurst(t, plain, burst, func(data []byte) {
			if bytes.IndexByte(data, '\n') >= 0 {
				t.Errorf("plain: message %q holds more than one event; want one JSON object per message", data)
			}
		})
		if plainMsgs != burst {
			t.Errorf("plain: %d events came in %d WebSocket messages; want one each", burst, plainMsgs)
		}
		t.Logf("%s: %d events in %d tertulia.v1 messages, %d plain ones", m, burst, v1Msgs, plainMsgs)
	})
}

// burstText is the i-th message of the burst. It holds a newline, which
// JSON escapes: the line an event takes in a joined message is all of it.
func burstText(i int) string { return fmt.Sprintf("burst %03d\n%s", i, strings.Repeat("x", 150)) }

// readBurst reads u's WebSocket messages until the burst's n messages have
// come, checking that each event is a whole frame and that they come in
// order, and returns how many WebSocket messages carried them. check sees
// every message as it came.
func readBurst(t *testing.T, u *wsUser, n int, check func(data []byte)) int {
	t.Helper()
	msgs, next := 0, 0
	for next < n {
		data, err := u.message(waitTimeout)
		if err != nil {
			t.Fatalf("%s: after %d of the burst's events: %v", u.name, next, err)
		}
		check(data)
		carried := false
		for _, ev := range bytes.Split(data, []byte("\n")) {
			f := u.parse(ev)
			if f.str("type") != "message" || !strings.HasPrefix(f.str("message"), "burst ") {
				continue
			}
			if got, want := f.str("message"), burstText(next); got != want {
				t.Fatalf("%s: event %d of the burst is %.9q; want %.9q", u.name, next, got, want)
			}
			if f.str("sender") != "sara" || f.str("room") != "batch" {
				t.Errorf("%s: event %v; want sara's in batch", u.name, f)
			}
			next++
			carried = true
		}
		if carried {
			msgs++
		}
	}
	return msgs
}
