package client_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// kick has an administrator kick user out of room on srv, and reads the
// user's room_left with kicked set on events.
func kick(t *testing.T, srv *nodetest.Server, events <-chan *chatv1.ServerFrame, user, room string) {
	t.Helper()
	kickOut(t, srv, user, room)
	await(t, events, user+"'s room_left", func(f *chatv1.ServerFrame) bool {
		return f.GetRoomLeft().GetKicked() && f.GetRoomLeft().GetUserId() == user
	})
}

// kickOut has an administrator kick user out of room on srv.
func kickOut(t *testing.T, srv *nodetest.Server, user, room string) {
	t.Helper()
	admin, err := client.Dial(srv.GRPCAddr, client.WithToken(srv.Token(t, "root", true)))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Kick(context.Background(), room, user); err != nil {
		t.Fatal(err)
	}
}

// After an administrator kicked alice out of a room, her next connection
// does not join it again (that would undo the kick): the server answers a
// message to it with not_in_room. Join of it again is a fresh join, and
// her messages to it are acknowledged.
func TestKickedRoomIsNotJoinedAgain(t *testing.T) {
	a := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	b := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	alice := reconnecting(t, []string{a.GRPCAddr, b.GRPCAddr}, a.Token(t, "alice", false))
	for _, room := range []string{"copas", "cañas"} {
		if err := alice.Join(t.Context(), room); err != nil {
			t.Fatal(err)
		}
		await(t, alice.Events(), room+" joined", joined(room))
	}
	kick(t, a, alice.Events(), "alice", "copas")

	a.Stop(t)
	await(t, alice.Events(), "a new welcome", isWelcome)
	send(t, alice, nodetest.RoomMessage("m1", "cañas", "sigo aquí"))
	send(t, alice, nodetest.RoomMessage("m2", "copas", "¿y yo?"))
	var rejoined []string
	got := newAnswers()
	got.read(t, alice.Events(), "m1's and m2's answers", func(f *chatv1.ServerFrame) bool {
		if j := f.GetRoomJoined(); j != nil {
			rejoined = append(rejoined, j.Room)
		}
		return got.final("m1") && got.final("m2")
	})
	if !slices.Equal(rejoined, []string{"cañas"}) {
		t.Errorf("rooms joined again on b: %q, want cañas only", rejoined)
	}
	if got.acks["m1"] != 1 {
		t.Errorf("m1 to cañas: errors %q, want an ack", got.errors["m1"])
	}
	if got.acks["m2"] != 0 || !slices.Equal(got.errors["m2"], []string{chatcodes.CodeNotInRoom}) {
		t.Errorf("m2 to copas: %d acks, errors %q, want not_in_room", got.acks["m2"], got.errors["m2"])
	}

	if err := alice.Join(t.Context(), "copas"); err != nil {
		t.Fatal(err)
	}
	await(t, alice.Events(), "copas joined again", joined("copas"))
	sendAcked(t, alice, "m3", "copas")
}

// joinDue has alice, in resendRoom, join it again on a node whose join
// rate lets no more joins through (oneJoinNode), and send m1 there: the
// join is refused for now (rate_limited) and due again after a minute, m1
// waits for it. It returns the node, alice and the answers read up to the
// join's refusal.
func joinDue(t *testing.T) (*nodetest.Server, *client.Reconnecting, *answers) {
	t.Helper()
	srv := oneJoinNode(t)
	alice := joinAlice(t, srv, patience)
	joinWithM1(t, alice)
	return srv, alice, awaitJoinRefusal(t, alice)
}

// oneJoinNode starts a node whose join rate lets one join of a connection
// through (a burst of one, back after 100 s): the next is refused for now,
// however slow the machine.
func oneJoinNode(t *testing.T) *nodetest.Server {
	t.Helper()
	limits := nodetest.Unlimited()
	limits.JoinsPerSecond = 0.01
	return nodetest.Start(t, node.Config{Limits: limits})
}

// patience is the Backoff of a session whose join refused goes again only
// after a minute: the test's next step comes first.
var patience = client.Backoff{Min: time.Minute, Max: time.Minute}

// joinWithM1 has alice join resendRoom and send m1 there.
func joinWithM1(t *testing.T, alice *client.Reconnecting) {
	t.Helper()
	if err := alice.Join(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	send(t, alice, nodetest.RoomMessage("m1", resendRoom, "espero"))
}

// awaitJoinRefusal reads alice's events up to a join's refusal, and fails
// the test unless it is rate_limited (refused for now) and m1 got no
// answer meanwhile: it waits for that join. It returns the answers read.
func awaitJoinRefusal(t *testing.T, alice *client.Reconnecting) *answers {
	t.Helper()
	got := newAnswers()
	got.read(t, alice.Events(), "the join's refusal", func(f *chatv1.ServerFrame) bool {
		return f.GetError() != nil && f.Id != "m1"
	})
	got.joinRefused(t, chatcodes.CodeRateLimited, "m1")
	if len(got.errors["m1"]) != 0 || got.acks["m1"] != 0 {
		t.Fatalf("m1 answered before its join: errors %q, %d acks", got.errors["m1"], got.acks["m1"])
	}
	return got
}

// failedOnce reads m1's answer and fails the test unless it is not_in_room
// with a text containing says, and m1 is no longer pending and gets no
// other answer: a leave sent by hand is answered not_in_room (alice is
// out of resendRoom), and nothing more answers m1 before it; nor does an
// error answer a frame without an id (a leave_room alice had no need to
// send).
func failedOnce(t *testing.T, alice *client.Reconnecting, got *answers, says string) {
	t.Helper()
	f := await(t, alice.Events(), "m1's answer", func(f *chatv1.ServerFrame) bool {
		got.note(f)
		return f.Id == "m1"
	})
	if e := f.GetError(); e.GetCode() != chatcodes.CodeNotInRoom || !strings.Contains(e.GetMessage(), says) {
		t.Fatalf("m1's answer: %v, want not_in_room saying %q", f, says)
	}
	if n := alice.Pending(); n != 0 {
		t.Errorf("%d messages pending, want 0", n)
	}
	send(t, alice, &chatv1.ClientFrame{Id: "l1", Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: resendRoom}}})
	got.read(t, alice.Events(), "the leave's answer", func(f *chatv1.ServerFrame) bool { return f.Id == "l1" })
	if !slices.Equal(got.errors["l1"], []string{chatcodes.CodeNotInRoom}) {
		t.Errorf("the leave: errors %q, want not_in_room", got.errors["l1"])
	}
	if got.acks["m1"] != 0 || len(got.errors["m1"]) != 1 {
		t.Errorf("m1: %d acks, errors %q, want one not_in_room", got.acks["m1"], got.errors["m1"])
	}
	if len(got.bare) != 0 {
		t.Errorf("errors %q answering frames without an id, want none", got.bare)
	}
}

// A message waiting for its room's join, refused for now (rate_limited),
// when an administrator kicks alice out of that room, fails once, with
// code not_in_room and a text saying she was kicked, and is not sent: the
// room is no longer joined, and the join is not sent again.
func TestMessageWaitingForAKickedRoomsJoinFails(t *testing.T) {
	srv, alice, got := joinDue(t)
	kick(t, srv, alice.Events(), "alice", resendRoom)
	failedOnce(t, alice, got, "kicked")
}

// A kick out of the room whose join, refused for now, was all that was
// due ends the hold on the connection, as a Leave does: a message sent
// next goes at once and is acknowledged.
func TestKickOutOfTheOnlyJoinDueEndsTheHold(t *testing.T) {
	srv, alice, _ := joinDue(t)
	kick(t, srv, alice.Events(), "alice", resendRoom)
	await(t, alice.Events(), "m1's answer", func(f *chatv1.ServerFrame) bool { return f.Id == "m1" })
	sendAcked(t, alice, "m2", "")
}

// A Recovery forgets a room when its session is kicked out of it, as Leave
// would (another user's kick, or the copy about another session of the same
// user, which is not marked yours, leaves it be), unless a join of the room
// is still to be answered: that join reached the server after the kick, and
// the room stays joined.
func TestRecoveryForgetsAKickedRoomUnlessAJoinIsToBeAnswered(t *testing.T) {
	kicked := func(user, room string) *chatv1.ServerFrame {
		return &chatv1.ServerFrame{Event: &chatv1.ServerFrame_RoomLeft{RoomLeft: &chatv1.RoomLeft{Room: room, UserId: user, Kicked: true, Yours: true}}}
	}
	aboutAnother := func(user, room string) *chatv1.ServerFrame {
		return &chatv1.ServerFrame{Event: &chatv1.ServerFrame_RoomLeft{RoomLeft: &chatv1.RoomLeft{Room: room, UserId: user, Kicked: true}}}
	}
	rec := client.NewRecovery()
	rec.Observe(&chatv1.ServerFrame{Event: &chatv1.ServerFrame_System{System: &chatv1.System{UserId: "alice"}}})
	for _, room := range []string{"copas", "cañas"} {
		j := rec.Join(room, 0)
		rec.Observe(&chatv1.ServerFrame{Id: j.Id, Event: &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{Room: room, Offset: 7, Epoch: "e"}}})
	}
	rec.Join("cañas", 0)                      // not answered yet
	rec.Observe(aboutAnother("bob", "copas")) // as the server sends it: bob's copy is not alice's
	if rec.Position("copas") == nil {
		t.Fatal("bob's kick forgot alice's copas")
	}
	rec.Observe(aboutAnother("alice", "copas"))
	if rec.Position("copas") == nil {
		t.Fatal("the kick of alice's other session forgot this session's copas")
	}
	rec.Observe(kicked("alice", "copas"))
	rec.Observe(kicked("alice", "cañas"))
	if p := rec.Position("copas"); p != nil {
		t.Errorf("copas after alice's kick: at %v, want forgotten", p)
	}
	if rec.Position("cañas") == nil {
		t.Error("cañas, whose join came after the kick, was forgotten")
	}
}

// Leave sends a leave_room only when the server may hold alice's
// connection in the room, as the pages do: not after an administrator
// kicked her out of it, nor after she left it already (there is nothing to
// leave); but after she joined it again by a join_room frame sent by hand,
// it does, once, and takes her out: a leave sent by hand next is answered
// not_in_room.
func TestLeaveSendsALeaveRoomOnlyWhenInTheRoom(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	alice := joinAlice(t, srv, client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond})
	kick(t, srv, alice.Events(), "alice", resendRoom)
	if err := alice.Leave(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	if n := client.LeavesSent(alice); n != 0 {
		t.Errorf("Leave after the kick sent %d leave_room frames, want none", n)
	}
	send(t, alice, &chatv1.ClientFrame{Id: "j1", Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: resendRoom}}})
	got := newAnswers()
	got.read(t, alice.Events(), "j1's room_joined", func(f *chatv1.ServerFrame) bool { return f.Id == "j1" })
	for range 2 {
		if err := alice.Leave(t.Context(), resendRoom); err != nil {
			t.Fatal(err)
		}
	}
	if n := client.LeavesSent(alice); n != 1 {
		t.Errorf("two Leaves after the join by hand sent %d leave_room frames, want one", n)
	}
	send(t, alice, &chatv1.ClientFrame{Id: "l1", Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: resendRoom}}})
	got.read(t, alice.Events(), "the leave's answer", func(f *chatv1.ServerFrame) bool { return f.Id == "l1" })
	if len(got.errors["j1"]) != 0 || !slices.Equal(got.errors["l1"], []string{chatcodes.CodeNotInRoom}) {
		t.Errorf("the join: errors %q, the leave: errors %q, want none and not_in_room", got.errors["j1"], got.errors["l1"])
	}
	if len(got.bare) != 0 {
		t.Errorf("errors %q answering frames without an id, want none", got.bare)
	}
}
