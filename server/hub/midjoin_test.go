package hub_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// gateBroker holds the first call of one kind about room until release is
// closed, having closed entered: a test does what it must while a join
// waits there. call is "Banned" (the join's first broker call) or
// "ReadLog" (its read of the room's log, once subscribed and a member).
type gateBroker struct {
	*memory.Broker
	call    string
	room    string
	passed  atomic.Bool // the gate was met; later calls pass
	entered chan struct{}
	release chan struct{}
}

func newGateBroker(call, room string) *gateBroker {
	return &gateBroker{Broker: memory.New(), call: call, room: room, entered: make(chan struct{}), release: make(chan struct{})}
}

func (b *gateBroker) gate(call, room string) {
	if call == b.call && room == b.room {
		if !b.passed.Swap(true) {
			close(b.entered)
			<-b.release
		}
	}
}

func (b *gateBroker) Banned(ctx context.Context, user, room string) (hub.Ban, bool, error) {
	b.gate("Banned", room)
	return b.Broker.Banned(ctx, user, room)
}

func (b *gateBroker) ReadLog(ctx context.Context, topic string, q hub.LogQuery) (hub.LogPage, error) {
	b.gate("ReadLog", strings.TrimPrefix(topic, "room:"))
	return b.Broker.ReadLog(ctx, topic, q)
}

// waitEntered waits for a join to reach the gate.
func (b *gateBroker) waitEntered(tb testing.TB) {
	tb.Helper()
	select {
	case <-b.entered:
	case <-time.After(5 * time.Second):
		tb.Fatalf("the join never reached its %s", b.call)
	}
}

// A session closed while one of its joins is under way is in no room once
// the join is done: the hub fans the room out to no one.
func TestCloseDuringJoinLeavesNoMember(t *testing.T) {
	ctx := context.Background()
	b := newGateBroker("Banned", "r")
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

	if n := h.Rooms(); n != 0 {
		t.Errorf("hub fans out %d rooms after their only member closed, want 0", n)
	}
}

// A joiner whose read of the room's log is slow holds back the room's live
// events meanwhile, within its queue's bounds: past them it is disconnected
// as slow at once, as a full queue would have it, not once the read is done.
func TestHeldEventsAreBoundedByTheQueue(t *testing.T) {
	ctx := context.Background()
	b := newGateBroker("ReadLog", "r")
	h := hub.New(hub.Config{QueueFrames: 8}, b)
	poster, err := h.Open(ctx, hub.Identity{UserID: "p", Name: "p"}, &recordingTransport{enc: &countingEncoder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer poster.Close(ctx)
	tr := newExpiryTransport()
	s, err := h.Open(ctx, hub.Identity{UserID: "j", Name: "j"}, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: "r", History: 10})
	}()
	defer func() { <-joined }()
	defer close(b.release)
	b.waitEntered(t)

	poster.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: "r"})
	for i := range 20 {
		poster.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Room: "r", Message: fmt.Sprintf("m%d", i)})
	}
	select {
	case d := <-tr.closed:
		if d.Code != hub.DisconnectSlow {
			t.Errorf("joiner closed with %+v, want DisconnectSlow", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("joiner still open holding 20 events with a queue of 8 frames")
	}
	// Until its transport closes, the slow joiner is still a member: the
	// events that come meanwhile would never go out, so none is held.
	poster.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Room: "r", Message: "after"})
	if n := hub.Held(s, "room:r"); n != 0 {
		t.Errorf("slow joiner holds %d events after its queue overflowed, want 0", n)
	}
}

// waitFrame waits for tr to hold a frame that starts with prefix.
func (t *recordingTransport) waitFrame(tb testing.TB, prefix string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		t.mu.Lock()
		found := slices.ContainsFunc(t.frames, func(f []byte) bool { return strings.HasPrefix(string(f), prefix) })
		t.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no %q frame within 5s", prefix)
		}
		time.Sleep(time.Millisecond)
	}
}

// A kick takes each of the user's sessions out of the room in its own
// time: one busy with a slow join does not hold the others back.
func TestKickDoesNotWaitForAnotherSessionsJoin(t *testing.T) {
	ctx := context.Background()
	b := newGateBroker("Banned", "slow")
	h := hub.New(hub.Config{}, b)
	var sessions []*hub.Session
	var transports []*recordingTransport
	for range 2 {
		tr := &recordingTransport{enc: &countingEncoder{}}
		s, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, tr)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: "k"})
		sessions, transports = append(sessions, s), append(transports, tr)
	}
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		sessions[0].Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: "slow"})
	}()
	defer func() { <-joined }()
	defer close(b.release)
	b.waitEntered(t)

	if err := h.Kick(ctx, "k", "u"); err != nil {
		t.Fatal(err)
	}
	transports[1].waitFrame(t, "room_left")
}
