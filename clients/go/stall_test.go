package client_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// A write that the network does not take (the node reads nothing more
// from alice, and her connection's buffers and flow-control window are
// full) does not stop alice's connection from being read: the answers and
// messages the node sends meanwhile reach her, and once the node reads
// again every message is acknowledged, in order. The write that blocks is
// first the reader's own (the messages that waited for tapas's join go
// when its room_joined is read), then also one of alice's sends, which
// waits for its write: a kick read meanwhile still reaches her.
func TestReadingGoesOnWhileAWriteIsBlocked(t *testing.T) {
	const waiting = 200 // 800 KB behind the join: far more than a flow-control window
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	bob := nodetest.Open(t, srv.GRPCAddr, srv.Token(t, "bob", false), "bob")
	bob.JoinFrom("tapas", nil, 0)
	bob.JoinFrom("copas", nil, 0)
	p := startProxy(t, srv.GRPCAddr)
	alice := reconnecting(t, []string{p.l.Addr().String()}, srv.Token(t, "alice", false))
	if err := alice.Join("copas"); err != nil {
		t.Fatal(err)
	}
	await(t, alice.Events(), "copas joined", joined("copas"))

	// tapas's room_joined is held in the proxy: the messages to tapas wait
	// for it, and m0, to copas, goes behind the join.
	p.down.shut()
	if err := alice.Join("tapas"); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 4000)
	var want []string
	for i := 1; i <= waiting; i++ {
		text := fmt.Sprintf("%d %s", i, pad)
		want = append(want, text)
		send(t, alice, nodetest.RoomMessage(fmt.Sprintf("m%d", i), "tapas", text))
	}
	send(t, alice, nodetest.RoomMessage("m0", "copas", "hola"))
	bob.Await("alice's hola", func(f *chatv1.ServerFrame) bool { return f.GetMessage().GetMessage() == "hola" })

	// The node reads nothing more from alice; her reader gets tapas's
	// room_joined, and the writes of the messages that waited for it stop.
	p.up.shut()
	p.down.open()
	await(t, alice.Events(), "m0's ack, behind tapas's room_joined", nodetest.IsAck("m0"))
	bob.Send(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: "copas", Message: "¿qué tal?"}}})
	await(t, alice.Events(), "bob's message", func(f *chatv1.ServerFrame) bool {
		return f.GetMessage().GetMessage() == "¿qué tal?"
	})
	sent := make(chan error, 1)
	go func() { sent <- alice.SendFrame(nodetest.RoomMessage("last", "tapas", "última")) }()
	want = append(want, "última")
	// The send is tracked, under the session's lock, before the kick is
	// read: the kick reaches alice only if that lock is not held across
	// the send's blocked write.
	eventually(t, "last tracked", func() bool { return alice.Pending() == waiting+1 })
	kick(t, srv, alice.Events(), "alice", "copas")

	p.up.open()
	got := newAnswers()
	got.read(t, alice.Events(), "every message's ack", func(*chatv1.ServerFrame) bool {
		for i := 1; i <= waiting; i++ {
			if got.acks[fmt.Sprintf("m%d", i)] == 0 {
				return false
			}
		}
		return got.acks["last"] > 0
	})
	if err := <-sent; err != nil { // written before its ack came
		t.Errorf("the last send: %v", err)
	}
	var texts []string
	bob.Await("alice's last message", func(f *chatv1.ServerFrame) bool {
		if m := f.GetMessage(); m.GetRoom() == "tapas" {
			texts = append(texts, m.Message)
		}
		return f.GetMessage().GetMessage() == want[len(want)-1]
	})
	if !slices.Equal(texts, want) {
		t.Errorf("bob saw %d messages in tapas, want the %d alice sent, in order", len(texts), len(want))
	}
}
