package hub_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// connectDistinct connects n distinct users, their ids starting with
// prefix, to h, each joining room, and returns their sessions.
func connectDistinct(tb testing.TB, h *hub.Hub, n int, prefix, room string) []*hub.Session {
	tb.Helper()
	ctx := context.Background()
	var frames, writes atomic.Int64
	out := make([]*hub.Session, 0, n)
	for i := range n {
		id := prefix + strconv.Itoa(i)
		s, err := h.Open(ctx, hub.Identity{UserID: id, Name: id}, &countingTransport{enc: textEncoder{}, frames: &frames, writes: &writes})
		if err != nil {
			tb.Fatalf("connect %s: %v", id, err)
		}
		out = append(out, s)
		s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: room})
	}
	tb.Cleanup(func() {
		for _, s := range out {
			s.Close(ctx)
		}
	})
	return out
}

// N distinct users connecting and joining one room cost frames in
// proportion to N once the lobby and the room pass the presence limit:
// announcements stop there, instead of reaching every member (N²/2 each).
func TestDistinctUsersCostLinearFrames(t *testing.T) {
	const users, limit = 1000, 50
	h := hub.New(hub.Config{PresenceLimit: limit}, memory.New())
	connectDistinct(t, h, users, "u", "lounge")
	// The k-th user's user_joined and room_joined reach the k members there
	// (the newcomer included), for k up to the limit: the rest is silent.
	want := int64(2 * limit * (limit + 1) / 2)
	if got := h.Metrics().Deliveries.Load(); got != want {
		t.Errorf("%d distinct users joining one room: %d announcement frames delivered, want %d (the seed's way: %d)",
			users, got, want, users*(users+1))
	}
}

// BenchmarkConnectDistinctUsers connects b.N distinct users, each joining
// one room, to a hub over the memory broker. ns/op must not grow with b.N:
// a connection and a join cost the same in a room of 10 or of 100,000.
func BenchmarkConnectDistinctUsers(b *testing.B) {
	for _, members := range []int{0, 10000} {
		b.Run(fmt.Sprintf("already=%d", members), func(b *testing.B) {
			h := hub.New(hub.Config{}, memory.New())
			connectDistinct(b, h, members, "already-", "bench")
			b.ReportAllocs()
			b.ResetTimer()
			connectDistinct(b, h, b.N, "new-", "bench")
		})
	}
}
