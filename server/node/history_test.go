package node_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func tokens(t *testing.T, srv *nodetest.Server) func(string) string {
	return func(user string) string { return srv.Token(t, user, false) }
}

func TestRoomRecoveryAfterCut(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	nodetest.RoomRecovery(t, tokens(t, srv), srv.GRPCAddr, srv.GRPCAddr, srv.GRPCAddr)
}

func TestPrivateRecoveryAfterCut(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	nodetest.PrivateRecovery(t, tokens(t, srv), srv.GRPCAddr, srv.GRPCAddr, srv.GRPCAddr)
}

func TestResendIsDeliveredOnce(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	nodetest.Resend(t, tokens(t, srv), srv.GRPCAddr, srv.GRPCAddr, srv.GRPCAddr)
}

// Joins while a publisher runs: each joiner's replay and live messages
// follow its room_joined with no gap and no duplicate.
func TestJoinWhilePublishing(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	nodetest.JoinWhilePublishing(t, tokens(t, srv), srv.GRPCAddr, srv.GRPCAddr)
}

// A gap longer than the history, or a log from another epoch, is not
// recovered: room_joined says so and nothing is replayed.
func TestRecoveryFails(t *testing.T) {
	small := func(string) hub.LogLimits { return hub.LogLimits{Size: 5} }
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{History: small}, Limits: nodetest.Unlimited()})
	tok := tokens(t, srv)
	const room = "small"
	bob := nodetest.Open(t, srv.GRPCAddr, tok("bob"), "bob")
	bob.JoinFrom(room, nil, 0)
	bob.Drain()
	sent := 0
	post := func(n int) {
		for range n {
			sent++
			bob.Send(nodetest.RoomMessage(fmt.Sprintf("x%d", sent), room, "filler"))
		}
	}
	alice := nodetest.Open(t, srv.GRPCAddr, tok("alice"), "alice")
	start := alice.JoinFrom(room, nil, 0)
	post(1)
	m := alice.Await("message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage()
	alice.Cut()
	// bob's sends are asynchronous: alice joins again only once they are
	// all in the log, which carol, in the room, sees as they are delivered.
	carol := nodetest.Open(t, srv.GRPCAddr, tok("carol"), "carol")
	carol.JoinFrom(room, nil, 0)
	post(6) // one more than the history holds
	for range 6 {
		carol.Await("bob's message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil })
	}
	carol.Drain()
	pos := &chatv1.Position{Offset: m.Offset, Epoch: m.Epoch}
	for _, tc := range []struct {
		name  string
		since *chatv1.Position
	}{
		{"gap beyond the history", pos},
		{"another epoch", &chatv1.Position{Offset: m.Offset, Epoch: "not" + m.Epoch}},
		{"from the future", &chatv1.Position{Offset: m.Offset + 100, Epoch: m.Epoch}},
	} {
		alice = nodetest.Open(t, srv.GRPCAddr, tok("alice"), "alice")
		j := alice.JoinFrom(room, tc.since, 0)
		if want := start.Offset + uint64(sent); j.Recovered == nil || *j.Recovered || j.Offset != want {
			t.Errorf("%s: room_joined recovered %v at %d, want false at %d", tc.name, j.Recovered, j.Offset, want)
		}
		sent++
		bob.Send(nodetest.RoomMessage("", room, "live "+tc.name))
		if got := alice.Await("message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage(); got.Message != "live "+tc.name {
			t.Errorf("%s: first message after room_joined %q, want the live one: nothing replayed", tc.name, got.Message)
		}
		alice.Cut()
	}

	// A restarted memory node starts new logs in a new epoch.
	srv.Stop(t)
	srv2 := nodetest.Start(t, node.Config{Hub: hub.Config{History: small}, Limits: nodetest.Unlimited()})
	alice = nodetest.Open(t, srv2.GRPCAddr, tokens(t, srv2)("alice"), "alice")
	if j := alice.JoinFrom(room, pos, 0); j.Recovered == nil || *j.Recovered || j.Epoch == m.Epoch {
		t.Errorf("after a restart: recovered %v in epoch %q, want false in an epoch other than %q", j.Recovered, j.Epoch, m.Epoch)
	}
	alice.Send(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_RecoverPrivate{RecoverPrivate: &chatv1.RecoverPrivate{
		Since: &chatv1.Position{Offset: 3, Epoch: m.Epoch}}}})
	if r := alice.Await("private_recovered", func(f *chatv1.ServerFrame) bool { return f.GetPrivateRecovered() != nil }).GetPrivateRecovered(); r.Recovered {
		t.Errorf("inbox after a restart: %v, want not recovered", r)
	}
}

// GetHistory over gRPC and REST: the latest messages, or those after since.
func TestGetHistory(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	tok := tokens(t, srv)
	const room = "eng-team"
	alice := nodetest.Open(t, srv.GRPCAddr, tok("alice"), "alice")
	alice.JoinFrom(room, nil, 0)
	for i := range 5 {
		id := fmt.Sprintf("h%d", i)
		alice.Send(nodetest.RoomMessage(id, room, fmt.Sprintf("h%d", i)))
		alice.Await("ack", nodetest.IsAck(id))
	}
	c := dial(t, srv, tok("reader"))
	since := uint64(1)
	for _, tc := range []struct {
		name string
		req  *chatv1.GetHistoryRequest
		want []string
	}{
		{"latest 3", &chatv1.GetHistoryRequest{Room: room, Limit: 3}, []string{"h2", "h3", "h4"}},
		{"all", &chatv1.GetHistoryRequest{Room: room}, []string{"h0", "h1", "h2", "h3", "h4"}},
		{"after 1, 2", &chatv1.GetHistoryRequest{Room: room, Since: &since, Limit: 2}, []string{"h1", "h2"}},
		{"empty room", &chatv1.GetHistoryRequest{Room: "nobody"}, nil},
	} {
		res, err := c.Raw().GetHistory(context.Background(), tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, m := range res.Messages {
			got = append(got, m.Message)
			if m.Sender != "alice" || m.UserId != "alice" || m.Timestamp == nil || m.Offset == 0 {
				t.Errorf("%s: message %v, want sender, user, timestamp and offset", tc.name, m)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}

	reader := srv.Token(t, "reader", false) // outside dev mode reads need a token
	body := getJSON(t, srv.URL("/api/v1/websocket/rooms/eng-team/history?since=1&limit=2"), reader)
	msgs, _ := body["messages"].([]any)
	if body["room"] != room || body["offset"] != "5" || body["epoch"] == "" || len(msgs) != 2 {
		t.Fatalf("REST history = %v, want room %s, offset \"5\", an epoch, 2 messages", body, room)
	}
	if first, _ := msgs[0].(map[string]any); first["message"] != "h1" || first["offset"] != "2" || first["sender"] != "alice" {
		t.Errorf("REST history first message %v, want h1 at offset \"2\" from alice", first)
	}
	if code, _ := request(t, http.MethodGet, srv.URL("/api/v1/websocket/rooms/bad%20room!/history"), reader); code != http.StatusBadRequest {
		t.Errorf("history of an invalid room: status %d, want 400", code)
	}
}

// With history off, room messages carry no offset, are still acknowledged,
// and a join replays nothing.
func TestHistoryOff(t *testing.T) {
	off := func(string) hub.LogLimits { return hub.LogLimits{Size: -1} }
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{History: off}, Limits: nodetest.Unlimited()})
	tok := tokens(t, srv)
	alice := nodetest.Open(t, srv.GRPCAddr, tok("alice"), "alice")
	alice.JoinFrom("quiet", nil, 0)
	alice.Send(nodetest.RoomMessage("q1", "quiet", "not kept"))
	if m := alice.Await("message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage(); m.Offset != 0 {
		t.Errorf("message with history off: offset %d, want none", m.Offset)
	}
	if a := alice.Await("ack", nodetest.IsAck("q1")).GetAck(); a.Offset != 0 || a.Room != "quiet" {
		t.Errorf("ack with history off: %v, want room quiet and no offset", a)
	}
	bob := nodetest.Open(t, srv.GRPCAddr, tok("bob"), "bob")
	if j := bob.JoinFrom("quiet", nil, 10); j.Offset != 0 {
		t.Errorf("room_joined with history off: offset %d, want 0", j.Offset)
	}
	alice.Send(nodetest.RoomMessage("", "quiet", "live"))
	if m := bob.Await("message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage(); m.Message != "live" {
		t.Errorf("first message after joining with history 10: %q, want the live one", m.Message)
	}
}

// A negative history is refused with a clear error, and the room is not joined.
func TestJoinWithNegativeHistory(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	alice := nodetest.Open(t, srv.GRPCAddr, tokens(t, srv)("alice"), "alice")
	alice.Send(&chatv1.ClientFrame{Id: "j", Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: "r", History: -1}}})
	if f := alice.Await("answer", func(f *chatv1.ServerFrame) bool { return f.Id == "j" }); f.GetError().GetCode() != "invalid_history" {
		t.Errorf("join with history -1: %v, want error invalid_history", f)
	}
	alice.Send(nodetest.RoomMessage("m", "r", "hi"))
	if f := alice.Await("answer", func(f *chatv1.ServerFrame) bool { return f.Id == "m" }); f.GetError().GetCode() != "not_in_room" {
		t.Errorf("message after the refused join: %v, want error not_in_room", f)
	}
}

// History bounds follow the room's namespace, the part of its name before ':'.
func TestHistoryPerNamespace(t *testing.T) {
	perNS := func(ns string) hub.LogLimits {
		if ns == "team" {
			return hub.LogLimits{Size: 2}
		}
		return hub.LogLimits{}
	}
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{History: perNS}, Limits: nodetest.Unlimited()})
	alice := nodetest.Open(t, srv.GRPCAddr, tokens(t, srv)("alice"), "alice")
	for _, room := range []string{"team:eng", "lounge"} {
		alice.JoinFrom(room, nil, 0)
		for i := range 3 {
			id := fmt.Sprintf("%s-%d", room, i)
			alice.Send(nodetest.RoomMessage(id, room, id))
			alice.Await("ack", nodetest.IsAck(id))
		}
	}
	for room, want := range map[string]int{"team:eng": 2, "lounge": 3} {
		body := getJSON(t, srv.URL("/api/v1/websocket/rooms/"+room+"/history"), srv.Token(t, "reader", false))
		if msgs, _ := body["messages"].([]any); len(msgs) != want || body["room"] != room {
			t.Errorf("history of %s: %v, want %d messages", room, body, want)
		}
	}
}
