package node_test

import (
	"testing"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestPrivateMessageReachesEveryConnectionOfTarget(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	alicePhone, aliceLaptop := connect(t, srv, "alice"), connect(t, srv, "alice")
	bob, carol := connect(t, srv, "bob"), connect(t, srv, "carol")

	bob.must(bob.s.SendFrame(&chatv1.ClientFrame{Id: "p1", Kind: &chatv1.ClientFrame_PrivateMessage{
		PrivateMessage: &chatv1.SendPrivateMessage{TargetUser: "alice", Message: "psst"}}}))
	for _, a := range []*user{alicePhone, aliceLaptop} {
		pm := a.await("private message", func(f *chatv1.ServerFrame) bool { return f.GetPrivateMessage() != nil }).GetPrivateMessage()
		if pm.Sender != "bob" || pm.Message != "psst" {
			t.Errorf("alice got %+v, want psst from bob", pm)
		}
	}
	sent := bob.await("private_sent", func(f *chatv1.ServerFrame) bool { return f.GetPrivateSent() != nil })
	if got := sent.GetPrivateSent(); got.Delivered != 2 || got.TargetUser != "alice" || sent.Id != "p1" {
		t.Errorf("private_sent = %+v (id %q), want delivered 2 to alice, id p1", got, sent.Id)
	}
	// Nobody else saw it: carol's next private frame, if any, would come before this lobby message.
	bob.must(bob.s.Send("", "marker"))
	carol.await("marker", func(f *chatv1.ServerFrame) bool {
		if f.GetPrivateMessage() != nil {
			t.Errorf("carol got a private message meant for alice: %v", f)
		}
		return isMessage("marker")(f)
	})

	t.Run("offline target", func(t *testing.T) {
		bob.must(bob.s.Private("nobody", "hello?"))
		got := bob.await("private_sent", func(f *chatv1.ServerFrame) bool { return f.GetPrivateSent() != nil }).GetPrivateSent()
		if got.Delivered != 0 || got.Message != "User nobody is not connected" {
			t.Errorf("private_sent = %+v, want 0 delivered and the not-connected answer", got)
		}
	})
}
