package client_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// stalled is alice, a Reconnecting session whose writes the node does not
// take (it reads nothing more from her, her connection's buffers and
// flow-control window are full), with waiting messages to tapas queued on
// her connection behind the write that blocks; bob, in tapas, copas and
// cañas, is connected to the node directly.
type stalled struct {
	srv   *nodetest.Server
	p     *proxy
	alice *client.Reconnecting
	bob   *nodetest.Peer
	want  []string // the texts alice sent to tapas, in order
}

const waiting = 200 // 800 KB behind tapas's join: far more than a flow-control window

// stall makes a stalled: the write that blocks is the reader's own (the
// messages that waited for tapas's join go when its room_joined is read),
// and alice reads on meanwhile.
func stall(t *testing.T) *stalled {
	t.Helper()
	st := &stalled{srv: nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})}
	st.bob = nodetest.Open(t, st.srv.GRPCAddr, st.srv.Token(t, "bob", false), "bob")
	for _, room := range []string{"tapas", "copas", "cañas"} {
		st.bob.JoinFrom(room, nil, 0)
	}
	st.p = startProxy(t, st.srv.GRPCAddr)
	st.alice = reconnecting(t, []string{st.p.l.Addr().String()}, st.srv.Token(t, "alice", false))
	if err := st.alice.Join(t.Context(), "copas"); err != nil {
		t.Fatal(err)
	}
	await(t, st.alice.Events(), "copas joined", joined("copas"))

	// tapas's room_joined is held in the proxy: the messages to tapas wait
	// for it, and m0, to copas, goes behind the join.
	st.p.down.shut()
	if err := st.alice.Join(t.Context(), "tapas"); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 4000)
	for i := 1; i <= waiting; i++ {
		text := fmt.Sprintf("%d %s", i, pad)
		st.want = append(st.want, text)
		send(t, st.alice, nodetest.RoomMessage(fmt.Sprintf("m%d", i), "tapas", text))
	}
	send(t, st.alice, nodetest.RoomMessage("m0", "copas", "hola"))
	st.bob.Await("alice's hola", func(f *chatv1.ServerFrame) bool { return f.GetMessage().GetMessage() == "hola" })

	// The node reads nothing more from alice; her reader gets tapas's
	// room_joined, and the writes of the messages that waited for it stop.
	st.p.up.shut()
	st.p.down.open()
	await(t, st.alice.Events(), "m0's ack, behind tapas's room_joined", nodetest.IsAck("m0"))
	return st
}

// inTapas has bob read up to alice's message last to tapas, and fails the
// test unless he saw every message alice sent there, in order. It returns
// every frame bob read.
func (st *stalled) inTapas(t *testing.T, last string) []*chatv1.ServerFrame {
	t.Helper()
	want := append(st.want, last)
	var texts []string
	var seen []*chatv1.ServerFrame
	st.bob.Await("alice's last message", func(f *chatv1.ServerFrame) bool {
		seen = append(seen, f)
		if m := f.GetMessage(); m.GetRoom() == "tapas" {
			texts = append(texts, m.Message)
		}
		return f.GetMessage().GetMessage() == last
	})
	if !slices.Equal(texts, want) {
		t.Errorf("bob saw %d messages in tapas, want the %d alice sent, in order", len(texts), len(want))
	}
	return seen
}

// acked reads alice's events until every message to tapas, and last, is
// acknowledged. The node answers in the order it reads, so every answer to
// a frame alice sent before last has come by then.
func (st *stalled) acked(t *testing.T, last string) *answers {
	t.Helper()
	got := newAnswers()
	got.read(t, st.alice.Events(), "every message's ack", func(*chatv1.ServerFrame) bool {
		for i := 1; i <= waiting; i++ {
			if got.acks[fmt.Sprintf("m%d", i)] == 0 {
				return false
			}
		}
		return got.acks[last] > 0
	})
	return got
}

// A write that the network does not take does not stop alice's connection
// from being read: the answers and messages the node sends meanwhile
// reach her, and once the node reads again every message is acknowledged,
// in order. The write that blocks is first the reader's own (stall), then
// also one of alice's sends, which waits for its write: a kick read
// meanwhile still reaches her.
func TestReadingGoesOnWhileAWriteIsBlocked(t *testing.T) {
	st := stall(t)
	alice := st.alice
	st.bob.Send(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: "copas", Message: "¿qué tal?"}}})
	await(t, alice.Events(), "bob's message", func(f *chatv1.ServerFrame) bool {
		return f.GetMessage().GetMessage() == "¿qué tal?"
	})
	sent := make(chan error, 1)
	go func() { sent <- alice.SendFrame(t.Context(), nodetest.RoomMessage("last", "tapas", "última")) }()
	// The send is tracked, under the session's lock, before the kick is
	// read: the kick reaches alice only if that lock is not held across
	// the send's blocked write.
	eventually(t, "last tracked", func() bool { return alice.Pending() == waiting+1 })
	kick(t, st.srv, alice.Events(), "alice", "copas")

	st.p.up.open()
	st.acked(t, "last")
	if err := <-sent; err != nil { // written before its ack came
		t.Errorf("the last send: %v", err)
	}
	st.inTapas(t, "última")
}

// A call whose context has already ended does nothing and returns
// ctx.Err(). One whose write the node does not take returns ctx.Err() once
// its context ends, and what it asked for stands: once the node reads
// again, the message it sent is acknowledged, once; then alice chats on.
func TestACallReturnsWhenItsContextEndsAndItsFrameStillGoes(t *testing.T) {
	st := stall(t)
	alice := st.alice

	ended, cancel := context.WithCancel(t.Context())
	cancel()
	expect(t, "Join with an ended context", context.Canceled, start(func() error { return alice.Join(ended, "cañas") }))
	late, cancelLate := context.WithDeadline(t.Context(), time.Now())
	defer cancelLate()
	expect(t, "Leave past its deadline", context.DeadlineExceeded, start(func() error { return alice.Leave(late, "copas") }))
	expect(t, "SendFrame with an ended context", context.Canceled, start(func() error {
		return alice.SendFrame(ended, nodetest.RoomMessage("never", "copas", "nunca"))
	}))

	// A context that ends while the call waits for its write: the call
	// waits until then.
	waitCtx, cancelWait := context.WithCancel(t.Context())
	sent := start(func() error { return alice.SendFrame(waitCtx, nodetest.RoomMessage("last", "tapas", "última")) })
	eventually(t, "last tracked", func() bool { return alice.Pending() == waiting+1 })
	select {
	case err := <-sent:
		t.Fatalf("SendFrame returned %v before its context ended, while its write was blocked", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancelWait()
	expect(t, "SendFrame cancelled while its write waits", context.Canceled, sent)

	st.p.up.open()
	seen := st.inTapas(t, "última")
	// A join with a live context works, and alice chats on in cañas.
	if err := alice.Join(t.Context(), "cañas"); err != nil {
		t.Fatal(err)
	}
	send(t, alice, nodetest.RoomMessage("salud", "cañas", "¡salud!"))
	got := st.acked(t, "salud") // alice reads on: salud waits for cañas's room_joined
	st.bob.Await("alice's ¡salud! in cañas", func(f *chatv1.ServerFrame) bool {
		seen = append(seen, f)
		return f.GetMessage().GetRoom() == "cañas" && f.GetMessage().GetMessage() == "¡salud!"
	})
	if got.acks["last"] != 1 || got.acks["never"] != 0 || len(got.errors) != 0 {
		t.Errorf("acks of last: %d, of never: %d, errors %q; want one ack of last, none of never, no error",
			got.acks["last"], got.acks["never"], got.errors)
	}
	var joins, leaves, nunca int
	for _, f := range seen {
		joins += count(f.GetRoomJoined().GetRoom() == "cañas" && f.GetRoomJoined().GetUserId() == "alice")
		leaves += count(f.GetRoomLeft().GetRoom() == "copas" && f.GetRoomLeft().GetUserId() == "alice")
		nunca += count(f.GetMessage().GetMessage() == "nunca")
	}
	if joins != 1 || leaves != 0 || nunca != 0 {
		t.Errorf("bob saw alice join cañas %d times, leave copas %d times, send nunca %d times; want 1, 0, 0", joins, leaves, nunca)
	}
}

// count is 1 if b, else 0.
func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

// start runs call on a goroutine of its own, and returns where its result
// comes.
func start(call func() error) <-chan error {
	got := make(chan error, 1)
	go func() { got <- call() }()
	return got
}

// expect fails the test unless got delivers want within waitTimeout. A
// call still waiting then ends when the test's session closes.
func expect(t *testing.T, what string, want error, got <-chan error) {
	t.Helper()
	select {
	case err := <-got:
		if err != want {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("%s: still waiting for its write %v after its context ended", what, waitTimeout)
	}
}
