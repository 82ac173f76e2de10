package client_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

const resendRoom = "tapas"

// limitedRoom starts a node whose connections may send perSecond messages
// (--limit-messages-per-second) with a burst of one (--limit-messages-burst
// 1), and puts bob, a plain session, in resendRoom.
func limitedRoom(t *testing.T, perSecond float64) (*nodetest.Server, *nodetest.Peer) {
	t.Helper()
	srv := nodetest.Start(t, node.Config{Limits: node.Limits{Limits: hub.Limits{
		MessagesPerSecond: perSecond, MessagesBurst: 1,
		UserMessagesPerSecond: hub.Off, JoinsPerSecond: hub.Off, ConnsPerIP: hub.Off,
	}}})
	bob := nodetest.Open(t, srv.GRPCAddr, srv.Token(t, "bob", false), "bob")
	bob.JoinFrom(resendRoom, nil, 0)
	return srv, bob
}

// joinAlice puts alice in resendRoom with a Reconnecting session that
// waits wait before each resend.
func joinAlice(t *testing.T, srv *nodetest.Server, wait client.Backoff) *client.Reconnecting {
	t.Helper()
	alice, err := client.Reconnect(context.Background(), []string{srv.GRPCAddr},
		client.WithToken(srv.Token(t, "alice", false)), client.WithBackoff(wait))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	await(t, alice.Events(), "welcome", isWelcome)
	if err := alice.Join(t.Context(), resendRoom); err != nil {
		t.Fatal(err)
	}
	await(t, alice.Events(), "room_joined", joined(resendRoom))
	return alice
}

// send sends f on r, failing the test if it cannot.
func send(t *testing.T, r *client.Reconnecting, f *chatv1.ClientFrame) {
	t.Helper()
	if err := r.SendFrame(t.Context(), f); err != nil {
		t.Fatalf("send %s: %v", f.Id, err)
	}
}

// refusal matches an error frame with code answering the frame with id.
func refusal(id, code string) func(*chatv1.ServerFrame) bool {
	return func(f *chatv1.ServerFrame) bool { return f.Id == id && f.GetError().GetCode() == code }
}

// counting wraps match, counting in *n the frames that count accepts.
func counting(n *int, count, match func(*chatv1.ServerFrame) bool) func(*chatv1.ServerFrame) bool {
	return func(f *chatv1.ServerFrame) bool {
		if count(f) {
			*n++
		}
		return match(f)
	}
}

// roomTexts reads p's room messages up to the one saying last, and returns
// their texts.
func roomTexts(p *nodetest.Peer, last string) []string {
	var seen []string
	p.Await(last, func(f *chatv1.ServerFrame) bool {
		if m := f.GetMessage(); m != nil {
			seen = append(seen, m.Message)
		}
		return f.GetMessage().GetMessage() == last
	})
	return seen
}

// A message the server refuses with rate_limited is sent again on the same
// connection after a backoff: the other member gets it once, no reconnect
// needed.
func TestRateLimitedMessageIsSentAgain(t *testing.T) {
	srv, bob := limitedRoom(t, 2)
	alice := joinAlice(t, srv, client.Backoff{Min: 100 * time.Millisecond, Max: time.Second})

	// m1 takes the bucket's one token; m2, right behind it, is refused
	// until the bucket refills (500 ms).
	send(t, alice, nodetest.RoomMessage("m1", resendRoom, "uno"))
	send(t, alice, nodetest.RoomMessage("m2", resendRoom, "dos"))
	refused := 0
	await(t, alice.Events(), "m2's ack", counting(&refused, refusal("m2", chatcodes.CodeRateLimited), nodetest.IsAck("m2")))
	if refused == 0 {
		t.Fatal("m2 was acknowledged without a refusal: the rate limit did not bite")
	}
	send(t, alice, nodetest.RoomMessage("m3", resendRoom, "tres"))
	await(t, alice.Events(), "m3's ack", nodetest.IsAck("m3"))

	if got, want := roomTexts(bob, "tres"), []string{"uno", "dos", "tres"}; !slices.Equal(got, want) {
		t.Errorf("bob saw %q, want %q: each once", got, want)
	}
	if n := alice.Reconnects(); n != 0 {
		t.Errorf("%d reconnects, want 0: the resend goes on the live connection", n)
	}
	if n := alice.Pending(); n != 0 {
		t.Errorf("%d messages pending after their acks, want 0", n)
	}
}

// A message the node cannot take while its Redis is down (unavailable) is
// sent again, on the same connection, once Redis is back: the other member
// gets it once, no reconnect needed.
func TestUnavailableMessageIsSentAgain(t *testing.T) {
	rs := redistest.Start(t)
	srv := nodetest.StartOnRedis(t, rs.URL())
	bob := nodetest.Open(t, srv.GRPCAddr, srv.Token(t, "bob", false), "bob")
	bob.JoinFrom(resendRoom, nil, 0)
	alice := joinAlice(t, srv, client.Backoff{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond})

	rs.Stop(t)
	send(t, alice, nodetest.RoomMessage("m1", resendRoom, "uno"))
	await(t, alice.Events(), "m1's refusal", refusal("m1", chatcodes.CodeUnavailable))
	rs.Restart(t) // empty: the room's log starts again
	await(t, alice.Events(), "m1's ack", nodetest.IsAck("m1"))
	send(t, alice, nodetest.RoomMessage("m2", resendRoom, "dos"))
	await(t, alice.Events(), "m2's ack", nodetest.IsAck("m2"))

	if got, want := roomTexts(bob, "dos"), []string{"uno", "dos"}; !slices.Equal(got, want) {
		t.Errorf("bob saw %q, want %q: each once", got, want)
	}
	if n := alice.Reconnects(); n != 0 {
		t.Errorf("%d reconnects, want 0: the resend goes on the live connection", n)
	}
}

// A frame refused for good (invalid_room) is dropped from the pending
// frames and not sent again with those the server refused for now.
func TestRefusedForGoodIsNotSentAgain(t *testing.T) {
	srv, bob := limitedRoom(t, 2)
	alice := joinAlice(t, srv, client.Backoff{Min: 100 * time.Millisecond, Max: time.Second})

	// bad takes the bucket's one token and is refused for its room's
	// name; m2, right behind it, is refused for now and sent again.
	send(t, alice, nodetest.RoomMessage("bad", "no\tway", "nunca"))
	send(t, alice, nodetest.RoomMessage("m2", resendRoom, "dos"))
	badErrors, limited := 0, 0
	isBad := func(f *chatv1.ServerFrame) bool { return f.Id == "bad" && f.GetError() != nil }
	await(t, alice.Events(), "bad's refusal", counting(&badErrors, isBad, refusal("bad", chatcodes.CodeInvalidRoom)))
	await(t, alice.Events(), "m2's ack", counting(&badErrors, isBad,
		counting(&limited, refusal("m2", chatcodes.CodeRateLimited), nodetest.IsAck("m2"))))
	if limited == 0 {
		t.Fatal("m2 was acknowledged without a refusal: the rate limit did not bite")
	}
	// Answers come in the order of the frames: once m3 is acknowledged,
	// whatever was sent before it has been answered.
	send(t, alice, nodetest.RoomMessage("m3", resendRoom, "tres"))
	await(t, alice.Events(), "m3's ack", counting(&badErrors, isBad, nodetest.IsAck("m3")))

	if badErrors != 1 {
		t.Errorf("%d errors answered bad, want 1: it was sent again", badErrors)
	}
	if got, want := roomTexts(bob, "tres"), []string{"dos", "tres"}; !slices.Equal(got, want) {
		t.Errorf("bob saw %q, want %q", got, want)
	}
	if n := alice.Pending(); n != 0 {
		t.Errorf("%d messages pending, want 0", n)
	}
}

// Close while a resend waits stops its timer: the session ends, and leaves
// no goroutine behind.
func TestCloseWhileAResendWaits(t *testing.T) {
	srv, _ := limitedRoom(t, 0.001)
	before := goleak.IgnoreCurrent()
	alice := joinAlice(t, srv, client.Backoff{Min: 300 * time.Millisecond, Max: time.Hour})

	// One message every 1,000 s: m2 is refused again at each resend, after
	// a wait of a second at least (the node's breach gap).
	send(t, alice, nodetest.RoomMessage("m1", resendRoom, "uno"))
	send(t, alice, nodetest.RoomMessage("m2", resendRoom, "dos"))
	await(t, alice.Events(), "m2's refusal", refusal("m2", chatcodes.CodeRateLimited))
	await(t, alice.Events(), "m2's refusal after a resend", refusal("m2", chatcodes.CodeRateLimited))
	// The timer is armed before the refusal is handed over: it waits now.

	alice.Close()
	for range alice.Events() {
	}
	if err := alice.Err(); err != nil {
		t.Errorf("Err after Close: %v, want nil", err)
	}
	// Once the node has let alice's session go, only the goroutines from
	// before alice came are left.
	c, err := client.Dial(srv.GRPCAddr, client.WithToken(srv.Token(t, "bob", false)))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
		s, err := c.Stats(context.Background())
		if err == nil && s.TotalConnections == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node still holds alice's session: %v %v", s, err)
		}
	}
	c.Close()
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("github.com/desertbit/timer.timerRoutine"))
}

// A backlog far over the rate limit's burst is worked off without the node
// taking the client for a flood: the resends are paced by the refusals,
// and each waits out the node's breach gap (1 s), so that no run of
// breaches lasts FloodTimeout. Every message arrives once, in order, and
// is acknowledged once.
func TestRateLimitedBacklogIsNoFlood(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: node.Limits{Limits: hub.Limits{
		MessagesPerSecond: 20, MessagesBurst: 20, FloodTimeout: 1500 * time.Millisecond,
		UserMessagesPerSecond: hub.Off, JoinsPerSecond: hub.Off, ConnsPerIP: hub.Off,
	}}})
	bob := nodetest.Open(t, srv.GRPCAddr, srv.Token(t, "bob", false), "bob")
	bob.JoinFrom(resendRoom, nil, 0)
	alice := joinAlice(t, srv, client.Backoff{})

	// 80 at once: 20 pass, and the other 60 need 3 s at 20/s, twice the
	// FloodTimeout.
	var want []string
	for i := range 80 {
		want = append(want, fmt.Sprint(i))
		send(t, alice, nodetest.RoomMessage("b"+want[i], resendRoom, want[i]))
	}
	// Answers come in the order of the frames: once the last one is
	// acknowledged, everything sent before was answered.
	send(t, alice, nodetest.RoomMessage("last", resendRoom, "last"))
	acks := map[string]int{}
	await(t, alice.Events(), "the last ack", func(f *chatv1.ServerFrame) bool {
		if f.GetAck() != nil {
			acks[f.Id]++
		}
		return nodetest.IsAck("last")(f) && len(acks) == 81
	})
	for id, n := range acks {
		if n != 1 {
			t.Errorf("%s acknowledged %d times, want once", id, n)
		}
	}
	if got, want := roomTexts(bob, "last"), append(want, "last"); !slices.Equal(got, want) {
		t.Errorf("bob saw %q, want %q: each once, in order", got, want)
	}
	if n := alice.Reconnects(); n != 0 {
		t.Errorf("%d reconnects, want 0: the node closed alice as a flood", n)
	}
}

// A message sent while earlier ones wait to be sent again goes after them:
// the room reads one sender's messages in the order they were sent.
func TestNewMessagesWaitForTheResend(t *testing.T) {
	srv, bob := limitedRoom(t, 2)
	alice := joinAlice(t, srv, client.Backoff{Min: 2 * time.Second, Max: 2 * time.Second})

	send(t, alice, nodetest.RoomMessage("m1", resendRoom, "uno"))
	send(t, alice, nodetest.RoomMessage("m2", resendRoom, "dos"))
	refused := 0
	await(t, alice.Events(), "m2's refusal", counting(&refused, refusal("m2", chatcodes.CodeRateLimited),
		func(f *chatv1.ServerFrame) bool { return f.Id == "m2" }))
	if refused == 0 {
		t.Fatal("m2 was acknowledged without a refusal: the rate limit did not bite")
	}
	// Not a synchronisation: the bucket holds a token again after 500 ms,
	// which m3 would take if it went out before m2's resend (1 s at least).
	// Were the sleep too short, the test would pass whatever the client did.
	time.Sleep(600 * time.Millisecond)
	send(t, alice, nodetest.RoomMessage("m3", resendRoom, "tres"))
	await(t, alice.Events(), "m3's ack", nodetest.IsAck("m3"))

	if got, want := roomTexts(bob, "tres"), []string{"uno", "dos", "tres"}; !slices.Equal(got, want) {
		t.Errorf("bob saw %q, want %q: in send order", got, want)
	}
}

// A join refused with rate_limited is sent again on the same connection
// after a wait: the room is joined, no reconnect needed.
func TestRateLimitedJoinIsSentAgain(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: node.Limits{Limits: hub.Limits{
		JoinsPerSecond: 1, MessagesPerSecond: hub.Off, UserMessagesPerSecond: hub.Off, ConnsPerIP: hub.Off,
	}}})
	alice := joinAlice(t, srv, client.Backoff{})

	// A burst of two joins: resendRoom's and copas's; cañas's is refused
	// until the bucket refills (1 s).
	for _, room := range []string{"copas", "cañas"} {
		if err := alice.Join(t.Context(), room); err != nil {
			t.Fatal(err)
		}
	}
	refused := 0
	isRefusal := func(f *chatv1.ServerFrame) bool { return f.GetError().GetCode() == chatcodes.CodeRateLimited }
	await(t, alice.Events(), "cañas joined", counting(&refused, isRefusal, joined("cañas")))
	if refused == 0 {
		t.Fatal("cañas was joined without a refusal: the rate limit did not bite")
	}
	if n := alice.Reconnects(); n != 0 {
		t.Errorf("%d reconnects, want 0: the join is sent again on the live connection", n)
	}
}

// A message sent twice with the same id is delivered once and acknowledged
// once: the server's second ack is not handed over.
func TestOneAckPerID(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	bob := nodetest.Open(t, srv.GRPCAddr, srv.Token(t, "bob", false), "bob")
	bob.JoinFrom(resendRoom, nil, 0)
	alice := joinAlice(t, srv, client.Backoff{})

	send(t, alice, nodetest.RoomMessage("m1", resendRoom, "uno"))
	send(t, alice, nodetest.RoomMessage("m1", resendRoom, "uno"))
	send(t, alice, nodetest.RoomMessage("m2", resendRoom, "dos"))
	acks := 0
	await(t, alice.Events(), "m2's ack", counting(&acks, nodetest.IsAck("m1"), nodetest.IsAck("m2")))
	if acks != 1 {
		t.Errorf("m1 acknowledged %d times, want once", acks)
	}
	if got, want := roomTexts(bob, "dos"), []string{"uno", "dos"}; !slices.Equal(got, want) {
		t.Errorf("bob saw %q, want %q", got, want)
	}
}
