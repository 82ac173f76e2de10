package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// gateBroker holds the first ban check of room (the first broker call of
// a join) until release is closed, having closed entered: a test does what
// it must while a join waits there.
type gateBroker struct {
	*memory.Broker
	room    string
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGateBroker(room string) *gateBroker {
	return &gateBroker{Broker: memory.New(), room: room, entered: make(chan struct{}), release: make(chan struct{})}
}

func (b *gateBroker) Banned(ctx context.Context, user, room string) (hub.Ban, bool, error) {
	if room == b.room {
		b.once.Do(func() {
			close(b.entered)
			<-b.release
		})
	}
	return b.Broker.Banned(ctx, user, room)
}

// waitEntered waits for a join to reach the gate.
func (b *gateBroker) waitEntered(tb testing.TB) {
	tb.Helper()
	select {
	case <-b.entered:
	case <-time.After(5 * time.Second):
		tb.Fatal("the join never reached its ban check")
	}
}

// A session closed while one of its joins is under way is in no room once
// the join is done: the broker does not count it among the room's members,
// and the hub fans the room out to no one.
func TestCloseDuringJoinLeavesNoMember(t *testing.T) {
	ctx := context.Background()
	b := newGateBroker("r")
	h := hub.New(hub.Config{}, b)
	s, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, &recordingTransport{enc: &countingEncoder{}})
	if err != nil {
		t.Fatal(err)
	}
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: "r"})
	}()
	b.waitEntered(t)
	s.Close(ctx) // as a transport does when its connection ends mid-join
	close(b.release)
	<-joined

	page, err := h.Members(ctx, "r", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 0 {
		t.Errorf("room r has %d members (%v) after its only joiner closed, want 0", page.Total, page.Members)
	}
	if n := h.Rooms(); n != 0 {
		t.Errorf("hub fans out %d rooms after their only member closed, want 0", n)
	}
}
