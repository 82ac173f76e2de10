package node_test

import (
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// accessNode runs a node with guests allowed and three namespaces besides
// the default one: team (private), news (only admins publish) and staff
// (no guests).
func accessNode(t *testing.T) *nodetest.Server {
	t.Helper()
	ns, err := hub.NewNamespaces(map[string]hub.NamespacePolicy{
		"team":  {Private: true, Guests: true},
		"news":  {Publish: hub.PublishAdmins, Guests: true},
		"staff": {Guests: false},
	})
	if err != nil {
		t.Fatal(err)
	}
	return nodetest.Start(t, node.Config{AllowAnonymous: true, Hub: hub.Config{Namespaces: ns}})
}

// token mints a real HS256 token for user with the given rooms claim.
func token(t *testing.T, srv *nodetest.Server, user string, admin bool, rooms ...string) string {
	t.Helper()
	tok, err := srv.Auth.Issue(user, admin, rooms...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// refused sends f and waits for its error, which must have code forbidden.
func (u *user) refused(f *chatv1.ClientFrame) {
	u.t.Helper()
	f.Id = "refused-1"
	u.must(u.s.SendFrame(f))
	e := u.await("error", func(f *chatv1.ServerFrame) bool { return f.GetError() != nil })
	if e.GetError().Code != hub.CodeForbidden || e.Id != f.Id || e.GetError().Message == "" {
		u.t.Errorf("%s: error = %v (id %q), want code forbidden with a message, id %s", u.name, e.GetError(), e.Id, f.Id)
	}
}

func joinFrame(room string) *chatv1.ClientFrame {
	return &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: room}}}
}

func sendFrame(room, text string) *chatv1.ClientFrame {
	return &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: room, Message: text}}}
}

func TestPrivateNamespaceOverGRPC(t *testing.T) {
	srv := accessNode(t)
	carol := connectToken(t, srv, "carol", token(t, srv, "carol", false, "other:room"))
	alice := connectToken(t, srv, "alice", token(t, srv, "alice", false, "team:eng"))
	bob := connectToken(t, srv, "bob", token(t, srv, "bob", false, "team:*"))
	root := connectToken(t, srv, "root", token(t, srv, "root", true))
	guest := connectToken(t, srv, "guest", "")

	carol.refused(joinFrame("team:eng"))
	guest.refused(joinFrame("team:eng"))
	alice.refused(joinFrame("team:ops")) // her claim names team:eng only
	alice.join("team:eng")
	bob.join("team:eng") // by the pattern
	root.join("team:eng")
	carol.join("general") // the default namespace is public

	eva := spanishSession(t, srv, "eva") // refusals are in the session's language
	eva.Join("team:eng")
	e := nodetest.Await(t, "eva", eva, "error", func(f *chatv1.ServerFrame) bool { return f.GetError() != nil })
	if want := `la sala "team:eng" es privada: tu token no te da acceso`; e.GetError().Code != hub.CodeForbidden || e.GetError().Message != want {
		t.Errorf("eva's refusal = %v, want code forbidden, %q", e.GetError(), want)
	}

	bob.must(bob.s.Send("team:eng", "for the team"))
	alice.await("bob's message", isMessage("for the team"))
	rooms, err := root.c.Rooms(t.Context())
	if err != nil || rooms["team:eng"] != 3 {
		t.Errorf("rooms = %v, %v; want team:eng with the 3 members admitted", rooms, err)
	}
}

func TestPublishAdminsOverGRPC(t *testing.T) {
	srv := accessNode(t)
	alice := connect(t, srv, "alice")
	root := connectToken(t, srv, "root", token(t, srv, "root", true))
	alice.join("news:daily") // anyone may join and read
	root.join("news:daily")

	alice.refused(sendFrame("news:daily", "me too"))
	root.must(root.s.Send("news:daily", "headline"))
	alice.await("the admin's message", func(f *chatv1.ServerFrame) bool {
		if m := f.GetMessage(); m != nil && m.Message == "me too" {
			t.Errorf("alice's refused message was delivered")
		}
		return isMessage("headline")(f)
	})
	alice.join("chat") // members publish in the default namespace
	alice.must(alice.s.Send("chat", "hello"))
	alice.await("own message", isMessage("hello"))
}

func TestGuestsRefusedWhereConfiguredOverGRPC(t *testing.T) {
	srv := accessNode(t)
	guest := connectToken(t, srv, "guest", "")
	alice := connect(t, srv, "alice")
	guest.refused(joinFrame("staff:room"))
	alice.join("staff:room")
	guest.join("lobby-room") // guests are welcome by default
}

func TestAccessOverWebSocket(t *testing.T) {
	srv := accessNode(t)
	carol := srv.DialWS(t, "/api/v1/ws/authenticated?token="+token(t, srv, "carol", false))
	alice := srv.DialWS(t, "/api/v1/ws/authenticated?token="+token(t, srv, "alice", false, "team:eng"))
	bob := srv.DialWS(t, "/api/v1/ws/authenticated?token="+token(t, srv, "bob", false, "team:*"))
	guest := srv.DialWS(t, "/api/v1/ws")

	for _, c := range []struct {
		name  string
		u     *nodetest.WSClient
		frame map[string]any
	}{
		{"private without the claim", carol, map[string]any{"type": "join_room", "room": "team:eng", "id": "j1"}},
		{"guest where guests may not go", guest, map[string]any{"type": "join_room", "room": "staff:x", "id": "j2"}},
		{"guest in a private namespace", guest, map[string]any{"type": "join_room", "room": "team:eng", "id": "j3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.u.Send(c.frame)
			e := c.u.Await("error", func(f map[string]any) bool { return f["type"] == "error" })
			if e["code"] != hub.CodeForbidden || e["id"] != c.frame["id"] || e["message"] == "" {
				t.Errorf("error frame = %v, want code forbidden, id %v and a message", e, c.frame["id"])
			}
		})
	}
	for _, u := range []*nodetest.WSClient{alice, bob} {
		u.Send(map[string]any{"type": "join_room", "room": "team:eng"})
		u.Await("room_joined", func(f map[string]any) bool {
			return f["type"] == "room_joined" && f["room"] == "team:eng" && f["user_id"] == u.Welcome["user_id"]
		})
	}
	alice.Send(map[string]any{"type": "join_room", "room": "news:daily"})
	alice.Await("room_joined news", func(f map[string]any) bool { return f["type"] == "room_joined" && f["room"] == "news:daily" })
	alice.Send(map[string]any{"room": "news:daily", "message": "me too", "id": "m1"})
	e := alice.Await("error", func(f map[string]any) bool { return f["type"] == "error" })
	if e["code"] != hub.CodeForbidden || e["id"] != "m1" {
		t.Errorf("member's message to news: error frame %v, want code forbidden, id m1", e)
	}
}

// What is in a room (its members; its history where served) is for those
// who may join it: REST 403, gRPC PermissionDenied otherwise.
func TestRoomReadsNeedTheRightToJoin(t *testing.T) {
	srv := accessNode(t)
	alice := connectToken(t, srv, "alice", token(t, srv, "alice", false, "team:eng"))
	alice.join("team:eng")
	carolTok, aliceTok := token(t, srv, "carol", false), token(t, srv, "alice", false, "team:*")

	url := srv.URL("/api/v1/websocket/rooms/team:eng/members")
	if code, body := request(t, http.MethodGet, url, carolTok); code != http.StatusForbidden || body["message"] == nil {
		t.Errorf("members of team:eng without the claim: %d %v, want 403 with a JSON message", code, body)
	}
	if code, body := request(t, http.MethodGet, url, aliceTok); code != http.StatusOK || body["total_members"] != float64(1) {
		t.Errorf("members of team:eng with the claim: %d %v, want 200 with alice", code, body)
	}
	_, err := dial(t, srv, carolTok).Members(t.Context(), "team:eng", 0, "")
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC ListMembers of team:eng without the claim: %v, want PermissionDenied", err)
	}
}

// A namespace's history_size bounds its rooms' logs over the node's
// setting; its history is for those who may join it.
func TestHistoryFollowsTheNamespace(t *testing.T) {
	ns, err := hub.NewNamespaces(map[string]hub.NamespacePolicy{
		"short": {HistorySize: 2, Guests: true},
		"team":  {Private: true, Guests: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{Namespaces: ns}})
	alice := nodetest.Open(t, srv.GRPCAddr, token(t, srv, "alice", false, "team:*"), "alice")
	for _, room := range []string{"short:a", "long", "team:eng"} {
		alice.JoinFrom(room, nil, 0)
		for i := range 3 {
			id := fmt.Sprintf("%s-%d", room, i)
			alice.Send(nodetest.RoomMessage(id, room, id))
			alice.Await("ack", nodetest.IsAck(id))
		}
	}
	reader := token(t, srv, "reader", false)
	for room, want := range map[string]int{"short:a": 2, "long": 3} {
		body := getJSON(t, srv.URL("/api/v1/websocket/rooms/"+room+"/history"), reader)
		if msgs, _ := body["messages"].([]any); len(msgs) != want {
			t.Errorf("history of %s: %d messages, want %d", room, len(msgs), want)
		}
	}
	url := srv.URL("/api/v1/websocket/rooms/team:eng/history")
	if code, body := request(t, http.MethodGet, url, reader); code != http.StatusForbidden {
		t.Errorf("history of team:eng without the claim: %d %v, want 403", code, body)
	}
	if code, body := request(t, http.MethodGet, url, token(t, srv, "bob", false, "team:eng")); code != http.StatusOK {
		t.Errorf("history of team:eng with the claim: %d %v, want 200", code, body)
	}
}

// A namespace written decomposed in the configuration ("cafe" and a
// combining accent, as some editors and file names give it) is the one
// its rooms are in, however the client writes them: room names are NFC.
// Before, its rooms fell back to the default namespace's policy, so a
// private namespace let anyone in.
func TestPrivateNamespaceWrittenDecomposed(t *testing.T) {
	ns, err := hub.NewNamespaces(map[string]hub.NamespacePolicy{"cafe\u0301": {Private: true}})
	if err != nil {
		t.Fatal(err)
	}
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{Namespaces: ns}})
	carol := connectToken(t, srv, "carol", token(t, srv, "carol", false))
	alice := connectToken(t, srv, "alice", token(t, srv, "alice", false, "caf\u00e9:*"))
	carol.refused(joinFrame("caf\u00e9:tables")) // precomposed é
	carol.refused(joinFrame("cafe\u0301:tables"))
	alice.join("caf\u00e9:tables") // the claim grants it
}

// A private namespace's rooms are listed (REST /rooms and /stats, gRPC
// ListRooms and GetStats) only to those who may join them, as their
// members and history are: a room's name can say what it is about. Before,
// every caller saw them all, with their member counts.
func TestRoomListsShowOnlyRoomsTheCallerMayRead(t *testing.T) {
	srv := accessNode(t)
	alice := connectToken(t, srv, "alice", token(t, srv, "alice", false, "team:eng"))
	alice.join("team:eng")
	alice.join("general")
	carolTok := token(t, srv, "carol", false)

	for _, c := range []struct {
		who, token string
		sees       bool
	}{
		{"carol, without the claim", carolTok, false},
		{"bob, with the claim", token(t, srv, "bob", false, "team:*"), true},
		{"an admin", token(t, srv, "root", true), true},
	} {
		rooms, err := dial(t, srv, c.token).Rooms(t.Context())
		if _, ok := rooms["team:eng"]; err != nil || ok != c.sees || rooms["general"] != 1 {
			t.Errorf("%s: gRPC rooms = %v, %v; want general, and team:eng only if %v", c.who, rooms, err, c.sees)
		}
		for _, path := range []string{"/api/v1/websocket/rooms", "/api/v1/websocket/stats"} {
			body := getJSON(t, srv.URL(path), c.token)
			listed, _ := body["rooms"].(map[string]any)
			count := body["total_rooms"]
			if path == "/api/v1/websocket/stats" {
				count = body["active_rooms"]
			}
			want := 1.0
			if c.sees {
				want = 2
			}
			if _, ok := listed["team:eng"]; ok != c.sees || listed["general"] != 1.0 || count != want {
				t.Errorf("%s: GET %s = %v; want general, team:eng only if %v, and a count of %v", c.who, path, body, c.sees, want)
			}
		}
	}
}
