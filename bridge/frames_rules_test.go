package bridge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/node"
)

// The rules of DESIGN.md's "Frames: rules every transport keeps", over
// WebSocket.

// runModesAndReaders runs fn on both bridge modes, for a plain client (one
// event per message) and a tertulia.v1 one (several, joined): the rules
// hold for both.
func runModesAndReaders(t *testing.T, fn func(t *testing.T, m mode, o dialOpts)) {
	runModes(t, func(t *testing.T, m mode) {
		for name, o := range map[string]dialOpts{"plain": {}, bridge.Subprotocol: {protocols: []string{bridge.Subprotocol}}} {
			t.Run(name, func(t *testing.T) { fn(t, m, o) })
		}
	})
}

// bob's copies of alice's frames never carry alice's ids; hers do.
func TestIDsReachOnlyTheirSender(t *testing.T) {
	runModesAndReaders(t, func(t *testing.T, m mode, o dialOpts) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		alice, bob := loginWith(t, tg, "alice", o), loginWith(t, tg, "bob", o)
		bob.join("den")
		alice.sendJSON(map[string]string{"type": "join_room", "room": "den", "id": "j1"})
		alice.sendJSON(map[string]string{"type": "message", "room": "den", "message": "hola", "id": "m1"})
		alice.sendJSON(map[string]string{"message": "lobby", "id": "m2"})
		alice.sendJSON(map[string]string{"type": "private_message", "target_user": "bob", "message": "psst", "id": "p1"})
		alice.sendJSON(map[string]string{"type": "leave_room", "room": "den", "id": "l1"})
		fromAlice := func(typ string) func(frame) bool {
			return func(f frame) bool { return f.str("type") == typ && f.str("user_id") == "alice" }
		}
		for _, w := range []struct {
			what  string
			match func(frame) bool
		}{
			{"room_joined", fromAlice("room_joined")},
			{"room message", isMessage("hola")},
			{"lobby message", isMessage("lobby")},
			{"private message", fromAlice("private_message")},
			{"room_left", fromAlice("room_left")},
		} {
			if f := bob.await("alice's "+w.what, w.match); f["id"] != nil {
				t.Errorf("bob's copy of alice's %s carries id %v, want none: %v", w.what, f["id"], f)
			}
		}
		for _, w := range []struct {
			id    string
			match func(frame) bool
		}{
			{"j1", fromAlice("room_joined")},
			{"m1", isMessage("hola")},
			{"m2", isMessage("lobby")},
			{"p1", isType("private_sent")},
			{"l1", fromAlice("room_left")},
		} {
			if f := alice.await("answer to "+w.id, w.match); f.str("id") != w.id {
				t.Errorf("alice's own answer %v carries id %v, want %q", f, f["id"], w.id)
			}
		}
	})
}

// Answers come in the order of the frames, however good and bad frames
// interleave: a join (answered through the broker), an unknown type and
// invalid JSON (refused by the bridge), a leave.
func TestAnswersKeepTheOrderOfFrames(t *testing.T) {
	runModesAndReaders(t, func(t *testing.T, m mode, o dialOpts) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		alice := loginWith(t, tg, "alice", o)
		for i := range 30 {
			room := "r" + string(rune('a'+i))
			alice.sendJSON(map[string]string{"type": "join_room", "room": room, "id": "j"})
			alice.sendJSON(map[string]string{"type": "dance", "id": "b"})
			alice.send(`{"type": "leave_room", "room": `) // no id: invalid JSON
			alice.sendJSON(map[string]string{"type": "leave_room", "room": room, "id": "l"})
			var got []string
			for len(got) < 4 {
				f := alice.next()
				switch {
				case f.str("id") != "":
					got = append(got, f.str("id"))
				case f.str("code") == "invalid_json":
					got = append(got, "x")
				}
			}
			if strings.Join(got, "") != "jbxl" {
				t.Fatalf("run %d: answers came as %v, want [j b x l]", i, got)
			}
		}
	})
}

// "café con leche" and "sala 1", as the seed allowed, are rooms; so is
// "Café con leche", another one.
func TestUnicodeRoomNames(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		alice, bob := login(t, tg, "alice"), login(t, tg, "bob")
		alice.join("café con leche")
		alice.join("sala 1")
		bob.join("Café con leche")
		alice.sendJSON(map[string]string{"type": "message", "room": "café con leche", "message": "solo", "id": "m"})
		if f := alice.await("own message", isMessage("solo")); f.str("room") != "café con leche" {
			t.Errorf("message = %v, want room café con leche", f)
		}
		bob.sendJSON(map[string]string{"type": "message", "room": "café con leche", "message": "x", "id": "n"})
		if f := bob.await("refusal", isError("not_in_room")); f.str("id") != "n" {
			t.Errorf("error = %v, want id n: Café and café are different rooms", f)
		}
		for _, room := range []string{"bell\u0007", strings.Repeat("a", 65), "fiesta 🎉"} {
			alice.sendJSON(map[string]string{"type": "join_room", "room": room, "id": "bad"})
			if f := alice.await("refusal", isType("error")); f.str("code") != "invalid_room" || f.str("id") != "bad" {
				t.Errorf("join %q: %v, want invalid_room", room, f)
			}
		}
	})
}

// A Spanish Accept-Language on the handshake gets Spanish texts, and the
// codes stay as they are.
func TestSpanishAcceptLanguage(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{AllowAnonymous: true}, bridge.Config{})
		h := http.Header{"Accept-Language": {"es-419,es;q=0.9"}}
		u := connect(t, tg, "ana", authPath(t, tg, "ana"), dialOpts{header: h})
		if got := u.welcome.str("message"); got != "Bienvenido ana" {
			t.Errorf("welcome = %q, want Bienvenido ana", got)
		}
		g := connect(t, tg, "guest", "/api/v1/ws", dialOpts{header: h})
		if got := g.welcome.str("message"); got != "Conectado al chat" {
			t.Errorf("guest welcome = %q, want Conectado al chat", got)
		}
		u.join("sala")
		u.send(`{"message": `)
		if f := u.await("error", isType("error")); f.str("code") != "invalid_json" || !strings.HasPrefix(f.str("message"), "Formato de mensaje inválido") {
			t.Errorf("error = %v, want invalid_json in Spanish", f)
		}
		u.sendJSON(map[string]string{"type": "private_message", "target_user": "nadie", "message": "hola"})
		if f := u.await("private_sent", isType("private_sent")); f.str("message") != "Usuario nadie no está conectado" {
			t.Errorf("private_sent = %v, want the seed's Spanish", f)
		}
	})
}
