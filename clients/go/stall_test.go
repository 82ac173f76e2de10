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
// acknowledged, and until match too if it is not nil.
func (st *stalled) acked(t *testing.T, last string, match func(*chatv1.ServerFrame) bool) *answers {
	t.Helper()
	got, matched := newAnswers(), match == nil
	got.read(t, st.alice.Events(), "every message's ack", func(f *chatv1.ServerFrame) bool {
		matched = matched || match(f)
		for i := 1; i <= waiting; i++ {
			if got.acks[fmt.Sprintf("m%d", i)] == 0 {
				return false
			}
		}
		return matched && got.acks[last] > 0
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
	st.acked(t, "last", nil)
	if err := <-sent; err != nil { // written before its ack came
		t.Errorf("the last send: %v", err)
	}
	st.inTapas(t, "última")
}

// A call whose write the node does not take returns ctx.Err() once its
// context ends, and what it asked for stands: once the node reads again,
// the room it joined is joined, the room it left is left, and the message
// it sent is acknowledged, once; then alice chats on.
func TestACallReturnsWhenItsContextEndsAndItsFrameStillGoes(t *testing.T) {
	st := stall(t)
	alice := st.alice

	// A context ended before the call bounds no wait at all.
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	expect(t, "Join with an ended context", context.Canceled, start(func() error { return alice.Join(ended, "cañas") }))
	late, cancelLate := context.WithDeadline(t.Context(), time.Now())
	defer cancelLate()
	expect(t, "Leave past its deadline", context.DeadlineExceeded, start(func() error { return alice.Leave(late, "copas") }))
	// One that ends while the call waits for its write.
	waitCtx, cancelWait := context.WithCancel(t.Context())
	sent := start(func() error { return alice.SendFrame(waitCtx, nodetest.RoomMessage("last", "tapas", "última")) })
	eventually(t, "last tracked", func() bool { return alice.Pending() == waiting+1 })
	cancelWait()
	expect(t, "SendFrame cancelled while its write waits", context.Canceled, sent)

	st.p.up.open()
	got := st.acked(t, "last", joined("cañas"))
	if got.acks["last"] != 1 || len(got.errors) != 0 {
		t.Errorf("acks of last: %d, errors %q; want one ack, no error", got.acks["last"], got.errors)
	}
	// The leave_room went before last, behind the join.
	if !slices.ContainsFunc(st.inTapas(t, "última"), func(f *chatv1.ServerFrame) bool {
		return f.GetRoomLeft().GetRoom() == "copas" && f.GetRoomLeft().GetUserId() == "alice"
	}) {
		t.Error("bob did not see alice leave copas before her last message")
	}
	if err := alice.Send(t.Context(), "cañas", "¡salud!"); err != nil {
		t.Fatal(err)
	}
	st.bob.Await("alice's ¡salud! in cañas", func(f *chatv1.ServerFrame) bool {
		return f.GetMessage().GetRoom() == "cañas" && f.GetMessage().GetMessage() == "¡salud!"
	})
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
