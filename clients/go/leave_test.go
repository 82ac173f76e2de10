package client_test

import (
	"fmt"
	"testing"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// leaveRoom is a leave_room frame of room with id.
func leaveRoom(id, room string) *chatv1.ClientFrame {
	return &chatv1.ClientFrame{Id: id, Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: room}}}
}

// joinRoom is a join_room frame of room with id, as an application sends
// it by hand.
func joinRoom(id, room string) *chatv1.ClientFrame {
	return &chatv1.ClientFrame{Id: id, Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: room}}}
}

// leaves has u leave room as an application does with a Recovery: it asks
// Recovery.Leave whether a leave_room is to be sent, and sends one with
// id. The test fails unless Leave says so and the server answers the
// leave_room without an error: the server held u in room.
func (u *user) leaves(room, id string) {
	u.t.Helper()
	if !u.rec.Leave(room) {
		u.t.Fatalf("Leave of %s: false, want a leave_room: the server holds %s in it", room, u.name)
	}
	u.send(leaveRoom(id, room))
	if f := u.next(id+"'s answer", func(f *chatv1.ServerFrame) bool { return f.Id == id }); f.GetError() != nil {
		u.t.Fatalf("the leave_room of %s: %v, want no error", room, f.GetError())
	}
}

// out fails the test unless a leave_room of room sent by hand, with id,
// is answered not_in_room: u is out of room.
func (u *user) out(room, id string) {
	u.t.Helper()
	u.send(leaveRoom(id, room))
	if f := u.next(id+"'s answer", func(f *chatv1.ServerFrame) bool { return f.Id == id }); f.GetError().GetCode() != chatcodes.CodeNotInRoom {
		u.t.Errorf("a leave_room of %s sent by hand: %v, want not_in_room: %s is still in it", room, f, u.name)
	}
}

// An administrator's kick that comes between two joins of a room, the
// first accepted and the second still to be answered, leaves the room
// joined: the server takes the second as a fresh join. The Recovery keeps
// the room (a new connection joins it again), and Leave says to send a
// leave_room, which takes alice out.
func TestKickBetweenTwoJoinsKeepsTheRoom(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	alice := newUser(t, srv, "alice")
	first, again := alice.rec.Join("copas", 0), alice.rec.Join("copas", 0)
	alice.send(first)
	alice.next("copas joined", joined("copas"))
	kickOut(t, srv, "alice", "copas")
	alice.next("alice's room_left", func(f *chatv1.ServerFrame) bool { return f.GetRoomLeft().GetKicked() })
	alice.send(again) // the join sent before the kick came
	alice.next("copas joined again", joined("copas"))
	if alice.rec.Position("copas") == nil {
		t.Error("copas forgotten: a new connection would not join it again")
	}
	alice.leaves("copas", "l1")
	alice.out("copas", "l2")
}

// After Recovery.Leave of a room, a join_room frame of it sent by hand on
// a plain Session, through Track, puts alice back in it: Leave says to
// send a leave_room again, and it takes her out.
func TestLeaveAfterAJoinSentByHand(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	alice := newUser(t, srv, "alice")
	alice.send(alice.rec.Join("copas", 0))
	alice.next("copas joined", joined("copas"))
	alice.leaves("copas", "l1")
	alice.send(joinRoom("j1", "copas"))
	if f := alice.next("j1's answer", func(f *chatv1.ServerFrame) bool { return f.Id == "j1" }); f.GetRoomJoined() == nil {
		t.Fatalf("j1's answer: %v, want room_joined", f)
	}
	alice.leaves("copas", "l2")
	alice.out("copas", "l3")
}

// A join_room frame sent by hand (SendFrame) for a room whose Join was
// refused for now (the node's Redis did not answer: unavailable) and waits
// to be sent again, once accepted, puts alice in the room: Leave sends a
// leave_room, and a leave sent by hand next is answered not_in_room.
func TestLeaveAfterAJoinSentByHandOfARoomWhoseJoinIsDue(t *testing.T) {
	rs := redistest.Start(t)
	srv := nodetest.StartOnRedis(t, rs.URL())
	alice := joinAlice(t, srv, patience)
	rs.Pause(t)
	if err := alice.Join(t.Context(), "cañas"); err != nil {
		t.Fatal(err)
	}
	await(t, alice.Events(), "the join's refusal", func(f *chatv1.ServerFrame) bool {
		return f.GetError().GetCode() == chatcodes.CodeUnavailable
	})
	rs.Resume(t)
	joinByHand(t, alice, "cañas")
	if err := alice.Leave(t.Context(), "cañas"); err != nil {
		t.Fatal(err)
	}
	got := newAnswers()
	send(t, alice, leaveRoom("l1", "cañas"))
	got.read(t, alice.Events(), "the leave's answer", func(f *chatv1.ServerFrame) bool { return f.Id == "l1" })
	if len(got.errors["l1"]) != 1 || got.errors["l1"][0] != chatcodes.CodeNotInRoom {
		t.Errorf("a leave_room sent by hand after Leave: errors %q, want not_in_room: alice is still in cañas", got.errors["l1"])
	}
	if len(got.bare) != 0 {
		t.Errorf("errors %q answering frames without an id, want none", got.bare)
	}
}

// joinByHand has r send join_room frames of room until one is accepted:
// the node takes its Redis for unreachable until a probe is answered
// (every 100ms), and refuses them for now until then.
func joinByHand(t *testing.T, r *client.Reconnecting, room string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for i := 1; ; i++ {
		id := fmt.Sprintf("j%d", i)
		send(t, r, joinRoom(id, room))
		f := await(t, r.Events(), id+"'s answer", func(f *chatv1.ServerFrame) bool { return f.Id == id })
		switch {
		case f.GetRoomJoined() != nil:
			return
		case f.GetError().GetCode() != chatcodes.CodeUnavailable || time.Now().After(deadline):
			t.Fatalf("%s's answer: %v, want room_joined", id, f)
		}
		time.Sleep(50 * time.Millisecond) // the next probe
	}
}
