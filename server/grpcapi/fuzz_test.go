package grpcapi_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/grpcapi"
	"github.com/tertulia/tertulia/server/hub"
)

// discard is a transport that drops what it is sent.
type discard struct{}

func (discard) Encoder() hub.Encoder              { return encoder{} }
func (discard) Write([][]byte) error              { return nil }
func (discard) Close(hub.Disconnect)              {}
func (encoder) Encode(*hub.Event) ([]byte, error) { return nil, nil }

type encoder struct{}

// FuzzCommandFromFrame feeds arbitrary protobuf ClientFrames, as a gRPC
// client could send them, through the mapping into the core and into a
// session: nothing panics, and the command keeps the frame's id and kind.
// Seeds: testdata/fuzz/FuzzCommandFromFrame.
func FuzzCommandFromFrame(f *testing.F) {
	for _, fr := range []*chatv1.ClientFrame{
		{Id: "m1", Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Message: "hi"}}},
		{Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: "general"}}},
		{Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: "general"}}},
		{Id: "p", Kind: &chatv1.ClientFrame_PrivateMessage{PrivateMessage: &chatv1.SendPrivateMessage{TargetUser: "bob", Message: "x"}}},
		{Id: "empty"},
	} {
		b, err := proto.Marshal(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctx := context.Background()
	off := hub.Limits{MessagesPerSecond: hub.Off, UserMessagesPerSecond: hub.Off, JoinsPerSecond: hub.Off}
	h := hub.New(hub.Config{Limits: off, MaxRooms: 1 << 20}, memory.New())
	s, err := h.Open(ctx, hub.Identity{UserID: "fuzz", Name: "fuzz"}, discard{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(ctx) })
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr chatv1.ClientFrame
		if proto.Unmarshal(data, &fr) != nil {
			return
		}
		cmd := grpcapi.CommandFromFrame(&fr)
		if cmd.ID != fr.GetId() {
			t.Fatalf("command id %q, want the frame's %q", cmd.ID, fr.GetId())
		}
		if (cmd.Kind == 0) != (fr.GetKind() == nil) {
			t.Fatalf("frame %v mapped to kind %d", &fr, cmd.Kind)
		}
		s.Handle(ctx, cmd)
	})
}
