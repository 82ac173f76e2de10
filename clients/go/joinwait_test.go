package client_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// cañasNFD is cañas spelled decomposed (n and a combining tilde): the
// server names the room in NFC, as its room_joined says.
const cañasNFD = "can\u0303as"

// sendAcked sends a message with id to room on r and reads r's events up
// to its answer, failing the test unless it is an ack.
func sendAcked(t *testing.T, r *client.Reconnecting, id, room string) {
	t.Helper()
	send(t, r, nodetest.RoomMessage(id, room, "hola"))
	got := newAnswers()
	got.read(t, r.Events(), id+"'s answer", func(*chatv1.ServerFrame) bool { return got.final(id) })
	if got.acks[id] != 1 {
		t.Fatalf("%s to %q: errors %q, want an ack", id, room, got.errors[id])
	}
}

// reconnecting starts alice's Reconnecting session on addrs, with opts
// after its own (a short Backoff), and reads its welcome.
func reconnecting(t *testing.T, addrs []string, token string, opts ...client.Option) *client.Reconnecting {
	t.Helper()
	alice, err := client.Reconnect(context.Background(), addrs, append([]client.Option{client.WithToken(token),
		client.WithBackoff(client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	await(t, alice.Events(), "welcome", isWelcome)
	return alice
}

// joinAgain has r join room, which its connection is in, and reads the
// server's already_in_room.
func joinAgain(t *testing.T, r *client.Reconnecting, room string) {
	t.Helper()
	if err := r.Join(t.Context(), room); err != nil {
		t.Fatal(err)
	}
	await(t, r.Events(), "already_in_room", func(f *chatv1.ServerFrame) bool {
		return f.GetError().GetCode() == chatcodes.CodeAlreadyInRoom
	})
}

// A room joined under one spelling of its name (NFD) and joined again
// under the same: the server says already_in_room, the room is joined, and
// a message to it is acknowledged, on this connection and on the next one.
func TestJoinUnderAnotherSpellingLetsItsMessagesGo(t *testing.T) {
	a := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	b := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	alice := reconnecting(t, []string{a.GRPCAddr, b.GRPCAddr}, a.Token(t, "alice", false))
	if err := alice.Join(t.Context(), cañasNFD); err != nil {
		t.Fatal(err)
	}
	await(t, alice.Events(), "cañas joined", joined("cañas"))
	joinAgain(t, alice, cañasNFD)
	sendAcked(t, alice, "m1", cañasNFD)

	a.Stop(t)
	await(t, alice.Events(), "a new welcome", isWelcome)
	sendAcked(t, alice, "m2", cañasNFD)
}

// A room joined by a join_room frame sent by hand, then by Join: the
// server says already_in_room, and a message to it is acknowledged.
func TestJoinAfterAJoinRoomFrameLetsItsMessagesGo(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	alice := reconnecting(t, []string{srv.GRPCAddr}, srv.Token(t, "alice", false))
	send(t, alice, &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: "copas"}}})
	await(t, alice.Events(), "copas joined", joined("copas"))
	joinAgain(t, alice, "copas")
	sendAcked(t, alice, "m1", "copas")
}

// Join, Send and Leave in a row: the message goes before the leave, right
// behind the join, and is acknowledged, not refused with not_in_room.
func TestMessageBetweenJoinAndLeaveGoes(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	bob := nodetest.Open(t, srv.GRPCAddr, srv.Token(t, "bob", false), "bob")
	bob.JoinFrom("copas", nil, 0)
	alice := reconnecting(t, []string{srv.GRPCAddr}, srv.Token(t, "alice", false))
	if err := alice.Join(t.Context(), "copas"); err != nil {
		t.Fatal(err)
	}
	send(t, alice, nodetest.RoomMessage("m1", "copas", "hola y adiós"))
	if err := alice.Leave(t.Context(), "copas"); err != nil {
		t.Fatal(err)
	}
	got := newAnswers()
	got.read(t, alice.Events(), "m1's answer", func(*chatv1.ServerFrame) bool { return got.final("m1") })
	if got.acks["m1"] != 1 {
		t.Fatalf("m1: errors %q, want an ack", got.errors["m1"])
	}
	bob.Await("alice's message", func(f *chatv1.ServerFrame) bool { return f.GetMessage().GetMessage() == "hola y adiós" })
	if n := alice.Pending(); n != 0 {
		t.Errorf("%d messages pending, want 0", n)
	}
}

// After an administrator kicked alice from a room, Join holds her messages
// to it until the join is accepted, as it promises: with the join refused
// for now (the node's Redis does not answer), a message sent right behind
// it waits and is acknowledged once the join passes, not refused with
// not_in_room.
func TestJoinAfterAKickHoldsItsMessages(t *testing.T) {
	rs := redistest.Start(t)
	srv := nodetest.StartOnRedis(t, rs.URL())
	alice := joinAlice(t, srv, client.Backoff{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond})
	admin, err := client.Dial(srv.GRPCAddr, client.WithToken(srv.Token(t, "root", true)))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Kick(context.Background(), resendRoom, "alice"); err != nil {
		t.Fatal(err)
	}
	await(t, alice.Events(), "alice's room_left", func(f *chatv1.ServerFrame) bool { return f.GetRoomLeft().GetKicked() })

	rs.Pause(t)
	if err := alice.Join(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	send(t, alice, nodetest.RoomMessage("m1", resendRoom, "he vuelto"))
	got := newAnswers()
	got.read(t, alice.Events(), "the join's refusal", func(f *chatv1.ServerFrame) bool {
		return f.GetError().GetCode() == chatcodes.CodeUnavailable || got.final("m1")
	})
	got.joinRefused(t, chatcodes.CodeUnavailable, "m1")
	rs.Resume(t)
	got.read(t, alice.Events(), "m1's answer", func(*chatv1.ServerFrame) bool { return got.final("m1") })
	if got.acks["m1"] != 1 || len(got.errors["m1"]) != 0 {
		t.Errorf("m1: %d acks and errors %q, want one ack", got.acks["m1"], got.errors["m1"])
	}
}

// A message refused for now (rate_limited) whose room's join is sent
// again before its resend (Join), and answered only after the resend's
// wait ran out (a frame before it waits on the node's hung Redis), goes
// once that join is answered: it is acknowledged, not kept unsent until
// the next connection.
func TestMessageRefusedForNowGoesAfterItsRoomsSlowJoin(t *testing.T) {
	rs := redistest.Start(t)
	srv := nodetest.Start(t, node.Config{
		// A call to the hung Redis is given up after 3s: long after the
		// resend's wait (1s after rate_limited).
		Broker: nodetest.RedisBroker(t, rs.URL(), func(c *redis.Config) { c.CallTimeout = 3 * time.Second }),
		Limits: node.Limits{Limits: hub.Limits{
			MessagesPerSecond: 0.5, MessagesBurst: 1,
			UserMessagesPerSecond: hub.Off, JoinsPerSecond: hub.Off, ConnsPerIP: hub.Off,
		}},
	})
	alice := joinAlice(t, srv, client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond})
	send(t, alice, nodetest.RoomMessage("m1", resendRoom, "uno"))
	await(t, alice.Events(), "m1's ack", nodetest.IsAck("m1"))

	rs.Pause(t)
	send(t, alice, nodetest.RoomMessage("m2", resendRoom, "dos")) // refused: m1 took the bucket's token
	// A join of another room, sent by hand: the node waits for Redis.
	send(t, alice, &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: "copas"}}})
	if err := alice.Join(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	got := newAnswers()
	got.read(t, alice.Events(), "the join's already_in_room", func(f *chatv1.ServerFrame) bool {
		return f.GetError().GetCode() == chatcodes.CodeAlreadyInRoom
	})
	if !slices.Contains(got.errors["m2"], chatcodes.CodeRateLimited) {
		t.Fatalf("m2: errors %q, want rate_limited first: the test tests nothing", got.errors["m2"])
	}
	rs.Resume(t)
	got.read(t, alice.Events(), "m2's answer", func(*chatv1.ServerFrame) bool { return got.final("m2") })
	if got.acks["m2"] != 1 || slices.ContainsFunc(got.errors["m2"], func(c string) bool { return c != chatcodes.CodeRateLimited && c != chatcodes.CodeUnavailable }) {
		t.Errorf("m2: %d acks and errors %q, want one ack", got.acks["m2"], got.errors["m2"])
	}
}

// Leaving a room whose join was refused for now (rate_limited) and waits to
// be sent again fails the message waiting for that join at once, as the
// pages do: code not_in_room, the pages' text saying the room was left
// before its join was accepted, and nothing more; the message is not sent
// after the leave, to be refused with a bare not_in_room.
func TestLeaveWithItsJoinDueFailsItsMessages(t *testing.T) {
	_, alice, got := joinDue(t)
	if err := alice.Leave(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	failedOnce(t, alice, got, fmt.Sprintf("left room %q before its join was accepted", resendRoom))
}

// Leaving the room whose join, refused for now, was all that was due ends
// the hold on the connection: a message sent next (to everyone connected:
// no join to wait for) goes at once and is acknowledged, instead of
// waiting for the join's resend wait (a minute here) to run out.
func TestLeaveOfTheOnlyJoinDueEndsTheHold(t *testing.T) {
	_, alice, _ := joinDue(t)
	if err := alice.Leave(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	await(t, alice.Events(), "m1's answer", func(f *chatv1.ServerFrame) bool { return f.Id == "m1" })
	sendAcked(t, alice, "m2", "")
}

// Leaving a room whose only join on the connection was refused for now
// (rate_limited) and waits to be sent again sends no leave_room, as the
// pages do: the server never let the connection in, so there is nothing
// to leave. The message that waited for the join fails once, and nothing
// else answers.
func TestLeaveOfARoomNeverEnteredSendsNoLeave(t *testing.T) {
	srv := oneJoinNode(t)
	alice := reconnecting(t, []string{srv.GRPCAddr}, srv.Token(t, "alice", false), client.WithBackoff(patience))
	if err := alice.Join(t.Context(), "copas"); err != nil { // the connection's one join
		t.Fatal(err)
	}
	await(t, alice.Events(), "copas joined", joined("copas"))
	joinWithM1(t, alice)
	got := awaitJoinRefusal(t, alice)
	if err := alice.Leave(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	if n := client.LeavesSent(alice); n != 0 {
		t.Errorf("Leave of a room never entered sent %d leave_room frames, want none", n)
	}
	failedOnce(t, alice, got, fmt.Sprintf("left room %q before its join was accepted", resendRoom))
}

// The late answer to a join of a room alice left and joined again before
// it came is moot: the server took the leave after that join. Held in a
// proxy until the join again was refused for now (rate_limited), the first
// join's room_joined does not say the room is joined on the connection, so
// no message goes ahead of the join again (the server would refuse it with
// not_in_room): m1 waits for it, and leaving the room fails m1 once, with
// the pages' text, and sends no leave_room.
func TestLateAnswerToAJoinLeftLetsNoMessageGo(t *testing.T) {
	srv := oneJoinNode(t)
	p := startProxy(t, srv.GRPCAddr)
	alice := reconnecting(t, []string{p.l.Addr().String()}, srv.Token(t, "alice", false), client.WithBackoff(patience))
	p.down.shut()
	if err := alice.Join(t.Context(), resendRoom); err != nil { // the connection's one join: accepted
		t.Fatal(err)
	}
	if err := alice.Leave(t.Context(), resendRoom); err != nil { // its answer is still to come: the leave goes
		t.Fatal(err)
	}
	if n := client.LeavesSent(alice); n != 1 {
		t.Fatalf("Leave with its join's answer to come sent %d leave_room frames, want one", n)
	}
	joinWithM1(t, alice)
	p.down.open()
	got := awaitJoinRefusal(t, alice)
	if err := alice.Leave(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	if n := client.LeavesSent(alice); n != 1 {
		t.Errorf("the Leaves sent %d leave_room frames, want one: the first Leave's", n)
	}
	failedOnce(t, alice, got, fmt.Sprintf("left room %q before its join was accepted", resendRoom))
}

// joinFrameBytes is less than a join_room of resendRoom takes on the wire
// (HTTP/2 frame header, gRPC prefix, id and room), and more than two
// HTTP/2 PING acks: all a client whose window is fixed (no BDP pings of
// its own) writes meanwhile, if the server's frames are held.
const joinFrameBytes = 36

// fixedWindow fixes the client's flow-control windows, which turns off its
// BDP pings: it writes no frame of its own on reading the server's.
var fixedWindow = client.WithDialOptions(grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(1<<20))

// Leaving a room whose join, refused for now (rate_limited), was sent
// again and is not answered yet (its answer held in a proxy) fails the message
// waiting for that join at once, as the pages do: code not_in_room, the
// pages' text, and nothing more; the message is not sent after the
// leave_room once the join sent again is answered, to be refused with a
// bare not_in_room.
func TestLeaveWithItsJoinSentAgainFailsItsMessages(t *testing.T) {
	srv := oneJoinNode(t)
	p := startProxy(t, srv.GRPCAddr)
	alice := reconnecting(t, []string{p.l.Addr().String()}, srv.Token(t, "alice", false), fixedWindow)
	if err := alice.Join(t.Context(), "copas"); err != nil { // the connection's one join
		t.Fatal(err)
	}
	await(t, alice.Events(), "copas joined", joined("copas"))
	joinWithM1(t, alice)
	got := awaitJoinRefusal(t, alice)
	p.down.shut()
	since := p.up.passed.Load()
	eventually(t, "join sent again through the gate", func() bool { return p.up.passed.Load()-since >= joinFrameBytes }) // 1 s after its refusal
	if err := alice.Leave(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	p.down.open()
	failedOnce(t, alice, got, fmt.Sprintf("left room %q before its join was accepted", resendRoom))
}

// Leaving a room whose join is still to be answered sends a leave_room;
// when that join is refused after all (rate_limited), the server answers
// the leave_room with not_in_room, which is not on Events, as on the
// pages: alice asked to be out, and is.
func TestLeaveOfAJoinRefusedAfterAllShowsNoNotInRoom(t *testing.T) {
	srv := oneJoinNode(t)
	p := startProxy(t, srv.GRPCAddr)
	alice := reconnecting(t, []string{p.l.Addr().String()}, srv.Token(t, "alice", false), client.WithBackoff(patience))
	if err := alice.Join(t.Context(), "copas"); err != nil { // the connection's one join
		t.Fatal(err)
	}
	await(t, alice.Events(), "copas joined", joined("copas"))
	p.down.shut()
	if err := alice.Join(t.Context(), resendRoom); err != nil { // refused: its answer is held
		t.Fatal(err)
	}
	if err := alice.Leave(t.Context(), resendRoom); err != nil { // the join's answer is still to come: the leave goes
		t.Fatal(err)
	}
	send(t, alice, &chatv1.ClientFrame{Id: "l1", Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: resendRoom}}})
	p.down.open()
	got := newAnswers()
	got.read(t, alice.Events(), "the leave's answer", func(f *chatv1.ServerFrame) bool { return f.Id == "l1" })
	got.joinRefused(t, chatcodes.CodeRateLimited, "l1")
	if !slices.Equal(got.errors["l1"], []string{chatcodes.CodeNotInRoom}) || len(got.bare) != 0 || len(got.errors) != 2 {
		t.Errorf("errors %q, bare %q: want the join's rate_limited and l1's not_in_room only", got.errors, got.bare)
	}
}

// A kick between the answers to two joins of a room, the first accepted,
// the second still to be answered, takes the connection out until the
// second is accepted: a message to the room waits for it (a node cannot
// order its answers so, hence frames fed to the Recovery). If the second
// is refused for now, the message still waits; sent, it would be refused
// with a bare not_in_room.
func TestMessageAfterAKickWaitsForTheJoinAfterIt(t *testing.T) {
	rec := client.NewRecovery()
	rec.Observe(&chatv1.ServerFrame{Event: &chatv1.ServerFrame_System{System: &chatv1.System{UserId: "alice"}}})
	j := rec.Join(resendRoom, 0)
	rec.Join(resendRoom, 0)
	m1 := nodetest.RoomMessage("m1", resendRoom, "espero")
	rec.Observe(&chatv1.ServerFrame{Id: j.Id, Event: &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{Room: resendRoom, Offset: 7, Epoch: "e"}}})
	if client.BehindJoin(rec, m1) {
		t.Fatal("m1 waits though the room's join was accepted: the test tests nothing")
	}
	rec.Observe(&chatv1.ServerFrame{Event: &chatv1.ServerFrame_RoomLeft{RoomLeft: &chatv1.RoomLeft{Room: resendRoom, UserId: "alice", Kicked: true, Yours: true}}})
	if !client.BehindJoin(rec, m1) {
		t.Error("after the kick, m1 would go ahead of the second join's answer")
	}
	rec.Observe(&chatv1.ServerFrame{Id: j.Id, Event: &chatv1.ServerFrame_Error{Error: &chatv1.Error{Code: chatcodes.CodeRateLimited}}})
	if !client.BehindJoin(rec, m1) {
		t.Error("after the second join's refusal for now, m1 would go without a join")
	}
}
