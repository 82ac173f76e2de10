package client_test

import (
	"context"
	"slices"
	"testing"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// ban bans user from room on srv for an hour.
func ban(t *testing.T, srv *nodetest.Server, user, room string) {
	t.Helper()
	admin, err := client.Dial(srv.GRPCAddr, client.WithToken(srv.Token(t, "root", true)))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Ban(context.Background(), user, room, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
}

// The rooms alice is in when her node stops, in join order: tapas, the
// third, is the one whose join the next node refuses.
var rejoinRooms = []string{"copas", "cañas", "tapas"}

// answers counts, by id, the answers alice reads: acks, and the codes of
// errors; and the codes of the errors that answer no frame with an id
// (bare), such as the server's answer to a leave_room of a room the
// connection is not in.
type answers struct {
	acks   map[string]int
	errors map[string][]string
	bare   []string
}

func newAnswers() *answers { return &answers{acks: map[string]int{}, errors: map[string][]string{}} }

// read reads events, noting each, until one satisfies match.
func (a *answers) read(t *testing.T, events <-chan *chatv1.ServerFrame, what string, match func(*chatv1.ServerFrame) bool) {
	t.Helper()
	await(t, events, what, func(f *chatv1.ServerFrame) bool {
		a.note(f)
		return match(f)
	})
}

// note counts f if it answers a frame.
func (a *answers) note(f *chatv1.ServerFrame) {
	switch {
	case f.Id == "" && f.GetError() != nil:
		a.bare = append(a.bare, f.GetError().GetCode())
	case f.Id == "":
	case f.GetAck() != nil:
		a.acks[f.Id]++
	case f.GetError() != nil:
		a.errors[f.Id] = append(a.errors[f.Id], f.GetError().GetCode())
	}
}

// final reports whether the message with id got its last answer: an ack,
// or an error that refuses it for good.
func (a *answers) final(id string) bool {
	errs := a.errors[id]
	return a.acks[id] > 0 || slices.ContainsFunc(errs, func(c string) bool {
		return c != chatcodes.CodeRateLimited && c != chatcodes.CodeUnavailable
	})
}

// joinRefused fails the test unless a frame other than sent (a join: its
// id is the client's own) was refused with code (rate_limited,
// unavailable): without it the test tests nothing.
func (a *answers) joinRefused(t *testing.T, code string, sent ...string) {
	t.Helper()
	for id, codes := range a.errors {
		if !slices.Contains(sent, id) && slices.Contains(codes, code) {
			return
		}
	}
	t.Fatalf("errors %v: no join was refused with %s, the test tests nothing", a.errors, code)
}

// movesWithPending puts alice in rejoinRooms on a node (a) that lets her
// send one message only, so that the messages in pending, sent after it,
// are refused for now and still wait for their ack when a stops. She then
// reconnects to b, the next address, and the frames of that connection,
// from its welcome on, are counted until each message of pending got its
// last answer. b is to refuse the join of tapas.
func movesWithPending(t *testing.T, b *nodetest.Server, pending []*chatv1.ClientFrame) *answers {
	t.Helper()
	a := nodetest.Start(t, node.Config{Limits: node.Limits{Limits: hub.Limits{
		MessagesPerSecond: 0.001, MessagesBurst: 1,
		UserMessagesPerSecond: hub.Off, JoinsPerSecond: hub.Off, ConnsPerIP: hub.Off,
	}}})
	alice, err := client.Reconnect(context.Background(), []string{a.GRPCAddr, b.GRPCAddr},
		client.WithToken(a.Token(t, "alice", false)),
		client.WithBackoff(client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	await(t, alice.Events(), "welcome", isWelcome)
	for _, room := range rejoinRooms {
		if err := alice.Join(t.Context(), room); err != nil {
			t.Fatal(err)
		}
		await(t, alice.Events(), room+" joined", joined(room))
	}
	// The one message a lets through; those behind it are refused for now.
	send(t, alice, nodetest.RoomMessage("m0", "copas", "cero"))
	await(t, alice.Events(), "m0's ack", nodetest.IsAck("m0"))
	for _, f := range pending {
		send(t, alice, f)
	}
	// Once the first is refused, none goes through on a: each waits for
	// its ack, whether it went out before the refusal came back or was
	// held after it.
	first := pending[0].Id
	await(t, alice.Events(), first+"'s refusal", refusal(first, chatcodes.CodeRateLimited))

	a.Stop(t)
	await(t, alice.Events(), "a new welcome", isWelcome)
	got := newAnswers()
	got.read(t, alice.Events(), "the pending messages' answers", func(*chatv1.ServerFrame) bool {
		for _, f := range pending {
			if !got.final(f.Id) {
				return false
			}
		}
		return true
	})
	if alice.Addr() != b.GRPCAddr {
		t.Fatalf("alice at %s, want %s", alice.Addr(), b.GRPCAddr)
	}
	// Answers come in the order of the frames: once a message sent now is
	// acknowledged, every answer to what came before has arrived.
	send(t, alice, nodetest.RoomMessage("after", "copas", "después"))
	got.read(t, alice.Events(), "after's ack", nodetest.IsAck("after"))
	return got
}

// After a reconnect, the messages that were waiting for their ack wait for
// their room's join: when the new node refuses it for now (rate_limited),
// they go once it has been accepted, in order, each acknowledged once,
// instead of being refused with not_in_room.
func TestMessagesWaitForTheirRoomsRejoin(t *testing.T) {
	// Two joins at once, then one a second: tapas's join is refused.
	b := nodetest.Start(t, node.Config{Limits: node.Limits{Limits: hub.Limits{
		JoinsPerSecond: 1, MessagesPerSecond: hub.Off, UserMessagesPerSecond: hub.Off, ConnsPerIP: hub.Off,
	}}})
	bob := nodetest.Open(t, b.GRPCAddr, b.Token(t, "bob", false), "bob")
	bob.JoinFrom("tapas", nil, 0)

	got := movesWithPending(t, b, []*chatv1.ClientFrame{
		nodetest.RoomMessage("m1", "tapas", "uno"),
		nodetest.RoomMessage("m2", "tapas", "dos"),
	})
	got.joinRefused(t, chatcodes.CodeRateLimited, "m1", "m2", "after")
	for _, id := range []string{"m1", "m2"} {
		if got.acks[id] != 1 || slices.ContainsFunc(got.errors[id], func(c string) bool { return c != chatcodes.CodeRateLimited }) {
			t.Errorf("%s: %d acks and errors %q, want one ack and no refusal for good", id, got.acks[id], got.errors[id])
		}
	}
	if texts, want := roomTexts(bob, "dos"), []string{"uno", "dos"}; !slices.Equal(texts, want) {
		t.Errorf("bob saw %q, want %q: each once, in order", texts, want)
	}
}

// After a reconnect, the messages to a room whose join the new node refuses
// for good (alice was banned meanwhile) fail with that join's error, not
// not_in_room, each once; those to other rooms go through.
func TestMessagesFailWithTheirRoomsRefusedRejoin(t *testing.T) {
	b := nodetest.Start(t, node.Config{Limits: nodetest.Unlimited()})
	bob := nodetest.Open(t, b.GRPCAddr, b.Token(t, "bob", false), "bob")
	bob.JoinFrom("copas", nil, 0)
	ban(t, b, "alice", "tapas")

	got := movesWithPending(t, b, []*chatv1.ClientFrame{
		nodetest.RoomMessage("m1", "tapas", "uno"),
		nodetest.RoomMessage("m2", "copas", "dos"),
		nodetest.RoomMessage("m3", "tapas", "tres"),
	})
	for _, id := range []string{"m1", "m3"} {
		if got.acks[id] != 0 || !slices.Equal(got.errors[id], []string{chatcodes.CodeBanned}) {
			t.Errorf("%s: %d acks and errors %q, want one error banned", id, got.acks[id], got.errors[id])
		}
	}
	if got.acks["m2"] != 1 {
		t.Errorf("m2: %d acks, want 1: copas was joined", got.acks["m2"])
	}
	if texts, want := roomTexts(bob, "después"), []string{"dos", "después"}; !slices.Equal(texts, want) {
		t.Errorf("bob saw %q, want %q", texts, want)
	}
}

// pausedJoin starts a node on a Redis, puts bob in cañas and alice in
// resendRoom, then pauses the Redis and has alice join cañas and send m1
// there: the join cannot be answered before Redis answers, so m1 is sent,
// or held back, before the join's answer comes. It returns alice, bob and
// the Redis, paused.
func pausedJoin(t *testing.T, banned bool) (*client.Reconnecting, *nodetest.Peer, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	srv := nodetest.StartOnRedis(t, rs.URL())
	bob := nodetest.Open(t, srv.GRPCAddr, srv.Token(t, "bob", false), "bob")
	bob.JoinFrom("cañas", nil, 0)
	if banned {
		ban(t, srv, "alice", "cañas")
	}
	alice := joinAlice(t, srv, client.Backoff{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond})

	rs.Pause(t)
	if err := alice.Join(t.Context(), "cañas"); err != nil {
		t.Fatal(err)
	}
	send(t, alice, nodetest.RoomMessage("m1", "cañas", "hola"))
	return alice, bob, rs
}

// A message sent right behind a join that the node refuses for now (its
// Redis does not answer: unavailable) waits for the join to be sent again
// and accepted, on the same connection: it is acknowledged once, not
// refused with not_in_room.
func TestMessageWaitsForItsRoomsJoin(t *testing.T) {
	alice, bob, rs := pausedJoin(t, false)
	got := newAnswers()
	got.read(t, alice.Events(), "the join's refusal", func(f *chatv1.ServerFrame) bool {
		return f.GetError().GetCode() == chatcodes.CodeUnavailable
	})
	rs.Resume(t)
	got.read(t, alice.Events(), "m1's answer", func(*chatv1.ServerFrame) bool { return got.final("m1") })
	send(t, alice, nodetest.RoomMessage("m2", "cañas", "adiós"))
	got.read(t, alice.Events(), "m2's ack", nodetest.IsAck("m2"))
	if got.acks["m1"] != 1 || len(got.errors["m1"]) != 0 {
		t.Errorf("m1: %d acks and errors %q, want one ack", got.acks["m1"], got.errors["m1"])
	}
	if texts, want := roomTexts(bob, "adiós"), []string{"hola", "adiós"}; !slices.Equal(texts, want) {
		t.Errorf("bob saw %q, want %q", texts, want)
	}
}

// A message sent right behind a join that the node refuses for good (a
// ban) fails with the join's error, not not_in_room, and so does one sent
// to that room after the refusal came; one to another room goes through.
func TestMessageFailsWithItsRoomsRefusedJoin(t *testing.T) {
	alice, _, rs := pausedJoin(t, true)
	send(t, alice, nodetest.RoomMessage("m2", resendRoom, "adiós"))
	rs.Resume(t)
	got := newAnswers()
	got.read(t, alice.Events(), "m2's ack", nodetest.IsAck("m2"))
	send(t, alice, nodetest.RoomMessage("m3", "cañas", "otra"))
	send(t, alice, nodetest.RoomMessage("m4", resendRoom, "otra"))
	got.read(t, alice.Events(), "m4's ack", nodetest.IsAck("m4"))
	for _, id := range []string{"m1", "m3"} {
		if got.acks[id] != 0 || !slices.Equal(got.errors[id], []string{chatcodes.CodeBanned}) {
			t.Errorf("%s: %d acks and errors %q, want one error banned", id, got.acks[id], got.errors[id])
		}
	}
	if got.acks["m2"] != 1 {
		t.Errorf("m2: %d acks, want 1", got.acks["m2"])
	}
	if n := alice.Pending(); n != 0 {
		t.Errorf("%d messages pending, want 0", n)
	}
}
