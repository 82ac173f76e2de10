package node_test

import (
	"strings"
	"testing"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestBadFramesGetErrorsAndSessionGoesOn(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	alice := connect(t, srv, "alice")
	bob := connect(t, srv, "bob")
	bob.join("den")

	msg := func(room, text string) *chatv1.ClientFrame {
		return &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: room, Message: text}}}
	}
	for _, tc := range []struct {
		name  string
		frame *chatv1.ClientFrame
		code  string
	}{
		{"room name with a control character", &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: "bell\x07room"}}}, "invalid_room"},
		{"room name too long", &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: strings.Repeat("r", 65)}}}, "invalid_room"},
		{"empty message", msg("", "   "), "empty_message"},
		{"oversized message", msg("", strings.Repeat("x", 4097)), "message_too_long"},
		{"leave a room not joined", &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: "den"}}}, "not_in_room"},
		{"send to a room not joined", msg("den", "let me in"), "not_in_room"},
		{"frame with nothing in it", &chatv1.ClientFrame{}, "unknown_type"},
		{"private without target", &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_PrivateMessage{PrivateMessage: &chatv1.SendPrivateMessage{Message: "hi"}}}, "invalid_target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.frame.Id = "bad-" + tc.code
			alice.must(alice.s.SendFrame(tc.frame))
			f := alice.await("error "+tc.code, func(f *chatv1.ServerFrame) bool { return f.GetError() != nil })
			if f.GetError().Code != tc.code || f.Id != tc.frame.Id || f.GetError().Message == "" {
				t.Errorf("error = %v (id %q), want code %s with a message, id %s", f.GetError(), f.Id, tc.code, tc.frame.Id)
			}
		})
	}
	// Nothing changed: bob saw none of it, alice is in no room, and her session works.
	alice.must(alice.s.Send("", "still working"))
	bob.await("alice's lobby message", func(f *chatv1.ServerFrame) bool {
		if m := f.GetMessage(); m != nil && m.Room == "den" {
			t.Errorf("bob got %q in den from a non-member", m.Message)
		}
		if f.GetRoomJoined() != nil || f.GetRoomLeft() != nil {
			t.Errorf("bob got %v from a refused frame", f)
		}
		return isMessage("still working")(f)
	})
	rooms, err := alice.c.Rooms(t.Context())
	if err != nil || len(rooms) != 1 || rooms["den"] != 1 {
		t.Errorf("rooms = %v, %v; want only den with 1 member", rooms, err)
	}
}
