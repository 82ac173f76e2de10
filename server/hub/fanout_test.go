package hub_test

import (
	"context"
	"testing"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// The fan-out asks a topic's members whether they are catching up on it
// only while the topic's group counts one that is: not for the lobby while
// a session keeps the floor of its user's topic, nor for a room once its
// members are past their floors.
func TestFanoutCountsMembersCatchingUp(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{Limits: unlimited}, memory.New())
	s, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, &recordingTransport{enc: textEncoder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	catching := func(topic string) int { return hub.CatchingUp(h, topic) }
	if got := catching("lobby"); got != 0 {
		t.Fatalf("lobby: got %d members catching up, want 0", got)
	}
	if got := catching("user:u"); got != 1 {
		t.Fatalf("user topic: got %d members catching up, want 1 (its floor)", got)
	}
	s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: "r"})
	if got := catching("room:r"); got != 1 {
		t.Fatalf("room after join: got %d members catching up, want 1 (its floor)", got)
	}
	s.Handle(ctx, hub.Command{Kind: hub.CmdMessage, Room: "r", Message: "hi"})
	if got := catching("room:r"); got != 0 {
		t.Fatalf("room after a message above the floor: got %d members catching up, want 0", got)
	}
	s.Handle(ctx, hub.Command{Kind: hub.CmdLeaveRoom, Room: "r"})
	s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, Room: "r"})
	s.Handle(ctx, hub.Command{Kind: hub.CmdLeaveRoom, Room: "r"})
	if got := catching("room:r"); got != -1 {
		t.Fatalf("room left: got %d, want no group", got)
	}
}
