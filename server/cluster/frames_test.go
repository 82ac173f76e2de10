package cluster_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// Through Redis too, a client's id comes back only to that client, on
// whichever node the other members are, and each member reads an
// announcement in its own language.
func TestFrameRulesAcrossNodes(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	alice, carol := connect(t, a, "alice", false), connect(t, a, "carol", false)
	eva := connectAddr(t, b.GRPCAddr, spanishToken(t, "eva"), "eva")
	carol.join("sala 1")
	eva.join("sala 1")

	alice.must(alice.s.SendFrame(&chatv1.ClientFrame{Id: "j1", Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: "sala 1"}}}))
	if f := alice.await("own join", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined().GetUserId() == "alice" }); f.Id != "j1" {
		t.Errorf("alice's own room_joined carries id %q, want j1", f.Id)
	}
	j := eva.await("alice's join", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined().GetUserId() == "alice" })
	if j.Id != "" || j.GetRoomJoined().Message != "alice se unió a la sala sala 1" {
		t.Errorf("eva got %v, want no id and the text in Spanish", j)
	}
	alice.must(alice.s.SendFrame(&chatv1.ClientFrame{Id: "m1", Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: "sala 1", Message: "hola"}}}))
	if f := alice.await("own message", isMessage("hola")); f.Id != "m1" {
		t.Errorf("alice's own message carries id %q, want m1", f.Id)
	}
	for _, u := range []*user{carol, eva} {
		if f := u.await("alice's message", isMessage("hola")); f.Id != "" {
			t.Errorf("%s's copy of alice's message carries id %q, want none", u.name, f.Id)
		}
	}
}

func spanishToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, auth.Claims{
		Username: user,
		Locale:   "es",
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		},
	}).SignedString(nodetest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
