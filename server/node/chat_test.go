package node_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestRoomMessagesReachMembersOnly(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	alice, bob, carol := connect(t, srv, "alice"), connect(t, srv, "bob"), connect(t, srv, "carol")
	alice.join("lounge")
	bob.join("lounge")

	alice.must(alice.s.Send("lounge", "hi bob"))
	got := bob.await("alice's room message", isMessage("hi bob")).GetMessage()
	if got.Sender != "alice" || got.Room != "lounge" || got.UserId != "alice" {
		t.Errorf("bob got %+v, want sender alice in room lounge", got)
	}
	bob.must(bob.s.Send("lounge", "hi alice"))
	alice.await("bob's room message", isMessage("hi alice"))

	// A lobby message after the room messages: once carol has it, she would
	// already have had the room messages had they been sent to her.
	alice.must(alice.s.Send("", "hello everyone"))
	for _, u := range []*user{alice, bob, carol} {
		f := u.await("lobby message", func(f *chatv1.ServerFrame) bool {
			m := f.GetMessage()
			if m != nil && m.Room != "" && u == carol {
				t.Errorf("carol got room message %q from %s, want none", m.Message, m.Sender)
			}
			return m != nil && m.Message == "hello everyone"
		})
		if f.GetMessage().Room != "" {
			t.Errorf("%s: lobby message has room %q, want none", u.name, f.GetMessage().Room)
		}
	}
}

func TestGuestsNeedDevOrAllowAnonymous(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   node.Config
		guest bool
	}{
		{"dev", node.Config{Dev: true}, true},
		{"allow-anonymous", node.Config{AllowAnonymous: true}, true},
		{"neither", node.Config{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := nodetest.Start(t, tc.cfg)
			s, err := dial(t, srv, "").Connect(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			f, ok := <-s.Events()
			if !tc.guest {
				if ok || status.Code(s.Err()) != codes.Unauthenticated {
					t.Errorf("guest got %v, %v; want Unauthenticated", f, s.Err())
				}
				return
			}
			w := f.GetSystem()
			if w == nil || !strings.HasPrefix(w.UserId, "guest-") || w.ConnectionId == "" {
				t.Errorf("guest welcome = %v, want a guest- user id and a connection id", f)
			}
		})
	}
}
