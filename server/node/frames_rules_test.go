package node_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/metadata"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// The rules of DESIGN.md's "Frames: rules every transport keeps", over gRPC.

// A client's id reaches only that client: bob's copies of alice's join,
// room message, leave and private message carry no id; alice's own do.
func TestIDsReachOnlyTheirSender(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	alice, bob := connect(t, srv, "alice"), connect(t, srv, "bob")
	bob.join("den")

	frames := []*chatv1.ClientFrame{
		{Id: "j1", Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: "den"}}},
		{Id: "m1", Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: "den", Message: "hola"}}},
		{Id: "m2", Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Message: "lobby"}}},
		{Id: "p1", Kind: &chatv1.ClientFrame_PrivateMessage{PrivateMessage: &chatv1.SendPrivateMessage{TargetUser: "bob", Message: "psst"}}},
		{Id: "l1", Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: "den"}}},
	}
	for _, f := range frames {
		alice.must(alice.s.SendFrame(f))
	}
	// bob sees each of them, without alice's ids.
	for _, want := range []struct {
		what  string
		match func(*chatv1.ServerFrame) bool
	}{
		{"room_joined", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined().GetUserId() == "alice" }},
		{"room message", isMessage("hola")},
		{"lobby message", isMessage("lobby")},
		{"private message", func(f *chatv1.ServerFrame) bool { return f.GetPrivateMessage().GetMessage() == "psst" }},
		{"room_left", func(f *chatv1.ServerFrame) bool { return f.GetRoomLeft().GetUserId() == "alice" }},
	} {
		if f := bob.await("alice's "+want.what, want.match); f.Id != "" {
			t.Errorf("bob's copy of alice's %s carries id %q, want none", want.what, f.Id)
		}
	}
	// alice's own copies carry hers.
	for _, want := range []struct {
		id    string
		match func(*chatv1.ServerFrame) bool
	}{
		{"j1", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined().GetUserId() == "alice" }},
		{"m1", isMessage("hola")},
		{"m2", isMessage("lobby")},
		{"p1", func(f *chatv1.ServerFrame) bool { return f.GetPrivateSent() != nil }},
		{"l1", func(f *chatv1.ServerFrame) bool { return f.GetRoomLeft().GetUserId() == "alice" }},
	} {
		if f := alice.await("answer to "+want.id, want.match); f.Id != want.id {
			t.Errorf("alice's own answer %v carries id %q, want %q", f, f.Id, want.id)
		}
	}
}

// A connection's answers come in the order of its frames, good and bad
// interleaved.
func TestAnswersKeepTheOrderOfFrames(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	alice := connect(t, srv, "alice")
	for i := range 30 {
		room := "r" + strings.Repeat("x", i%3) + string(rune('a'+i))
		alice.must(alice.s.SendFrame(&chatv1.ClientFrame{Id: "j", Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: room}}}))
		alice.must(alice.s.SendFrame(&chatv1.ClientFrame{Id: "b"}))
		alice.must(alice.s.SendFrame(&chatv1.ClientFrame{Id: "l", Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: room}}}))
		var got []string
		for len(got) < 3 {
			if f := alice.next(); f.Id != "" {
				got = append(got, f.Id)
			}
		}
		if strings.Join(got, "") != "jbl" {
			t.Fatalf("run %d: answers came as %v, want [j b l]", i, got)
		}
	}
}

// Room names are Unicode: "café con leche" and "sala 1" are rooms, one
// apart from "Café con leche"; a decomposed é names the same room as a
// precomposed one.
func TestUnicodeRoomNames(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	alice, bob := connect(t, srv, "alice"), connect(t, srv, "bob")
	alice.join("café con leche")
	alice.join("sala 1")
	bob.join("Café con leche")
	// Typed with a combining accent, it is alice's room: NFC.
	bob.must(bob.s.Join("cafe\u0301 con leche"))
	bob.await("room_joined café con leche", func(f *chatv1.ServerFrame) bool {
		return f.GetRoomJoined().GetRoom() == "café con leche" && f.GetRoomJoined().GetUserId() == "bob"
	})
	alice.must(alice.s.Send("café con leche", "¿un cortado?"))
	bob.await("alice's message", isMessage("¿un cortado?"))

	rooms, err := alice.c.Rooms(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int32{"café con leche": 2, "Café con leche": 1, "sala 1": 1}
	if len(rooms) != len(want) {
		t.Errorf("rooms = %v, want %v", rooms, want)
	}
	for r, n := range want {
		if rooms[r] != n {
			t.Errorf("rooms[%q] = %d, want %d (all: %v)", r, rooms[r], n, rooms)
		}
	}
}

func TestInvalidRoomNamesAreRefused(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	alice := connect(t, srv, "alice")
	for _, room := range []string{
		"bell\x07room", "zero\u200bwidth", "rtl\u202eoverride", strings.Repeat("ñ", 65),
		"party 🎉", " padded", "team:", ":eng", "tab\troom",
	} {
		alice.must(alice.s.SendFrame(&chatv1.ClientFrame{Id: "bad", Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: room}}}))
		f := alice.await("an answer", func(f *chatv1.ServerFrame) bool { return f.Id == "bad" })
		if f.GetError().GetCode() != "invalid_room" {
			t.Errorf("join %q: got %v, want error invalid_room", room, f)
		}
	}
	alice.join(strings.Repeat("ñ", 64))
	alice.join("team:eng")
}

// A session's texts are in its language: the token's locale claim first,
// then the client's accept-language, then the server's default.
func TestTextsFollowTheConnectionsLanguage(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	for _, tc := range []struct {
		name, locale, acceptLanguage string
		welcome, joined, refused     string
	}{
		{"default", "", "", "Welcome ana", "ana joined room sala", "unknown frame type"},
		{"accept-language", "", "es-ES,es;q=0.9,en;q=0.5", "Bienvenido ana", "ana se unió a la sala sala", "tipo de mensaje desconocido"},
		{"locale claim", "es", "en-US", "Bienvenido ana", "ana se unió a la sala sala", "tipo de mensaje desconocido"},
		{"unknown locale, then accept-language", "fr", "es", "Bienvenido ana", "ana se unió a la sala sala", "tipo de mensaje desconocido"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.acceptLanguage != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "accept-language", tc.acceptLanguage)
			}
			c := dial(t, srv, localeToken(t, "ana", tc.locale))
			s, err := c.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			u := &user{t: t, name: "ana", c: c, s: s}
			if got := u.next().GetSystem().GetMessage(); got != tc.welcome {
				t.Errorf("welcome = %q, want %q", got, tc.welcome)
			}
			u.must(s.Join("sala"))
			j := u.await("room_joined", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined() != nil })
			if got := j.GetRoomJoined().Message; got != tc.joined {
				t.Errorf("room_joined = %q, want %q", got, tc.joined)
			}
			u.must(s.SendFrame(&chatv1.ClientFrame{Id: "x"}))
			e := u.await("error", func(f *chatv1.ServerFrame) bool { return f.GetError() != nil }).GetError()
			if e.Message != tc.refused || e.Code != "unknown_type" {
				t.Errorf("error = %q (%s), want %q (unknown_type)", e.Message, e.Code, tc.refused)
			}
			u.must(s.Leave("sala"))
			u.await("room_left", func(f *chatv1.ServerFrame) bool { return f.GetRoomLeft() != nil })
		})
	}
}

// An announcement reaches each member in that member's language.
func TestAnnouncementsInEachMembersLanguage(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	es := spanishSession(t, srv, "eva")
	en := connect(t, srv, "ed")
	nodetest.Join(t, "eva", es, "sala", "eva")
	en.join("sala")
	j := nodetest.Await(t, "eva", es, "ed's join", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined().GetUserId() == "ed" })
	if got, want := j.GetRoomJoined().Message, "ed se unió a la sala sala"; got != want {
		t.Errorf("eva sees %q, want %q", got, want)
	}
	nodetest.Join(t, "eva", es, "otra", "eva")
	en.must(en.s.Join("otra"))
	j2 := en.await("ed's own join", func(f *chatv1.ServerFrame) bool {
		return f.GetRoomJoined().GetUserId() == "ed" && f.GetRoomJoined().Room == "otra"
	})
	if got, want := j2.GetRoomJoined().Message, "ed joined room otra"; got != want {
		t.Errorf("ed sees %q, want %q", got, want)
	}
}

func spanishSession(t *testing.T, srv *nodetest.Server, name string) *client.Session {
	t.Helper()
	c := dial(t, srv, localeToken(t, name, "es"))
	s, err := c.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	nodetest.Await(t, name, s, "welcome", func(f *chatv1.ServerFrame) bool { return f.GetSystem() != nil })
	return s
}

// localeToken mints a token for user with a locale claim ("" for none),
// signed as the node's tokens are.
func localeToken(t *testing.T, user, locale string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, auth.Claims{
		Username: user,
		Locale:   locale,
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

// --locale sets the language of sessions that name none the server has.
func TestDefaultLocale(t *testing.T) {
	if _, err := node.New(node.Config{JWT: auth.Config{Secret: nodetest.Secret}, Locale: "xx"}); err == nil {
		t.Errorf("node.New with locale xx: no error, want one")
	}
	srv := nodetest.Start(t, node.Config{Locale: "es"})
	if got := connect(t, srv, "ana").welcome.Message; got != "Bienvenido ana" {
		t.Errorf("welcome = %q, want Bienvenido ana", got)
	}
	c := dial(t, srv, localeToken(t, "ed", "en"))
	s, err := c.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if got := (&user{t: t, name: "ed", c: c, s: s}).next().GetSystem().GetMessage(); got != "Welcome ed" {
		t.Errorf("welcome with locale claim en = %q, want Welcome ed", got)
	}
}

// REST answers in the caller's language too, and takes Unicode room names.
func TestRESTBroadcastInSpanish(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	bob := connect(t, srv, "bob")
	bob.join("café con leche")
	req, _ := http.NewRequest(http.MethodPost, srv.URL("/api/v1/websocket/broadcast?message=hola&room=caf%C3%A9%20con%20leche"), nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token(t, "root", true))
	req.Header.Set("Accept-Language", "es")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusOK || body["message"] != "Mensaje enviado a la sala café con leche" {
		t.Errorf("broadcast = %d %v, want 200 with the seed's Spanish", resp.StatusCode, body)
	}
	bob.await("the broadcast", func(f *chatv1.ServerFrame) bool { return f.GetAdminBroadcast().GetMessage() == "hola" })
}
