package node_test

import (
	"fmt"
	"testing"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestPresenceFollowsFirstAndLastConnection(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	watcher := connect(t, srv, "watcher")
	joined := func(user string) func(*chatv1.ServerFrame) bool {
		return func(f *chatv1.ServerFrame) bool { return f.GetUserJoined() != nil && f.GetUserJoined().UserId == user }
	}
	left := func(user string) func(*chatv1.ServerFrame) bool {
		return func(f *chatv1.ServerFrame) bool { return f.GetUserLeft() != nil && f.GetUserLeft().UserId == user }
	}

	first := connect(t, srv, "dora")
	watcher.await("dora joined", joined("dora"))
	second := connect(t, srv, "dora")
	second.s.Close()
	// The server has seen the second connection go before the marker is
	// sent, so a wrong user_left for dora would come before the marker.
	eventually(t, func() string {
		if st, err := watcher.c.Stats(t.Context()); err != nil || st.TotalConnections != 2 {
			return fmt.Sprintf("stats = %v, %v; want 2 connections once dora's second is gone", st, err)
		}
		return ""
	})
	watcher.must(watcher.s.Send("", "marker 1"))
	watcher.await("marker 1", func(f *chatv1.ServerFrame) bool {
		if joined("dora")(f) || left("dora")(f) {
			t.Errorf("watcher got %v for dora's second connection, want nothing", f)
		}
		return isMessage("marker 1")(f)
	})
	first.s.Close()
	watcher.await("dora left", left("dora"))
}
