package node_test

import (
	"testing"

	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// With the memory broker, tertulia_history_messages and _bytes are the
// messages the rooms' history holds and the bytes of their text: they grow
// with messages, stop at the history size, and fall when longer messages are
// evicted by shorter ones.
func TestMetricsHistorySize(t *testing.T) {
	small := func(string) hub.LogLimits { return hub.LogLimits{Size: 3} }
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{History: small}, Limits: nodetest.Unlimited()})
	alice := connect(t, srv, "alice")
	alice.join("ops")
	alice.join("dev")
	send := func(room string, texts ...string) {
		t.Helper()
		for _, text := range texts {
			alice.must(alice.s.Send(room, text))
			alice.await("own message "+text, isMessage(text)) // appended when it comes back
		}
	}
	want := func(step string, messages, bytes float64) {
		t.Helper()
		m := nodetest.Scrape(t, srv.URL("/metrics"))
		gotM, okM := m.Value("tertulia_history_messages")
		gotB, okB := m.Value("tertulia_history_bytes")
		if !okM || !okB || gotM != messages || gotB != bytes {
			t.Errorf("%s: history messages %v (present %v), bytes %v (present %v); want %v and %v",
				step, gotM, okM, gotB, okB, messages, bytes)
		}
	}

	want("before any message", 0, 0)
	send("ops", "a", "bb", "ccc")
	want("3 messages in ops", 3, 6)
	send("dev", "dev!")
	want("and 1 in dev", 4, 10)
	send("ops", "ddddd", "eeeeeeee")
	want("ops full: c, d, e kept", 4, 3+5+8+4)
	send("ops", "f", "g")
	want("long ones evicted: e, f, g kept", 4, 8+1+1+4)
}
