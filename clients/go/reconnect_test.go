package client_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

const waitTimeout = 10 * time.Second

// await reads events until one satisfies match.
func await(t *testing.T, events <-chan *chatv1.ServerFrame, what string, match func(*chatv1.ServerFrame) bool) *chatv1.ServerFrame {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case f, ok := <-events:
			if !ok {
				t.Fatalf("events closed waiting for %s", what)
			}
			if match(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, waitTimeout)
		}
	}
}

func isWelcome(f *chatv1.ServerFrame) bool { return f.GetSystem() != nil }

func joined(room string) func(*chatv1.ServerFrame) bool {
	return func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined().GetRoom() == room }
}

// When its node shuts down, a Reconnecting session goes to the next
// address of its list, joins its rooms there again and chats on.
func TestReconnectsToTheNextNode(t *testing.T) {
	a := nodetest.Start(t, node.Config{})
	b := nodetest.Start(t, node.Config{}) // same secret: the token is good on both
	r, err := client.Reconnect(context.Background(), []string{a.GRPCAddr, b.GRPCAddr},
		client.WithToken(a.Token(t, "alice", false)),
		client.WithBackoff(client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first := await(t, r.Events(), "welcome", isWelcome).GetSystem().GetConnectionId()
	if err := r.Join(t.Context(), "tapas"); err != nil {
		t.Fatal(err)
	}
	await(t, r.Events(), "room_joined", joined("tapas"))
	if r.Addr() != a.GRPCAddr {
		t.Errorf("connected to %s, want the first address %s", r.Addr(), a.GRPCAddr)
	}

	a.Stop(t) // a restart: the session ends with Unavailable

	second := await(t, r.Events(), "a new welcome", isWelcome).GetSystem().GetConnectionId()
	if second == first {
		t.Errorf("the new connection has the old id %s", first)
	}
	await(t, r.Events(), "room_joined again", joined("tapas"))
	if r.Addr() != b.GRPCAddr || r.Reconnects() != 1 {
		t.Errorf("after the restart: at %s after %d reconnects, want %s after 1", r.Addr(), r.Reconnects(), b.GRPCAddr)
	}

	bob, err := client.Dial(b.GRPCAddr, client.WithToken(b.Token(t, "bob", false)))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	bs, err := bob.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	bs.Join("tapas")
	await(t, bs.Events(), "bob's room_joined", joined("tapas"))
	bs.Send("tapas", "¿seguimos?")
	m := await(t, r.Events(), "bob's message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil })
	if m.GetMessage().GetMessage() != "¿seguimos?" || m.GetMessage().GetSender() != "bob" {
		t.Errorf("got %v, want bob's ¿seguimos?", m)
	}

	r.Close()
	for range r.Events() {
	}
	if r.Err() != nil {
		t.Errorf("Err after Close: %v, want nil", r.Err())
	}
}

// A token the server refuses is refused on every node: no retry.
func TestReconnectGivesUpOnARefusedToken(t *testing.T) {
	a := nodetest.Start(t, node.Config{})
	r, err := client.Reconnect(context.Background(), []string{a.GRPCAddr}, client.WithToken("not-a-token"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	select {
	case f, ok := <-r.Events():
		if ok {
			t.Fatalf("got %v, want the events closed", f)
		}
	case <-time.After(waitTimeout):
		t.Fatal("still trying after a refused token")
	}
	if status.Code(r.Err()) != codes.Unauthenticated {
		t.Errorf("Err: %v, want Unauthenticated", r.Err())
	}
}

// The waits are random within [d/2, d], d doubling from Min to Max.
func TestBackoffIsRandomAndBounded(t *testing.T) {
	b := client.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	for n := range 40 {
		d := min(b.Max, b.Min<<min(n, 20))
		seen := make(map[time.Duration]bool)
		for range 100 {
			w := b.Delay(n)
			if w < d/2 || w > d {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", n, w, d/2, d)
			}
			seen[w] = true
		}
		if len(seen) < 50 {
			t.Errorf("Delay(%d): %d distinct waits in 100, want them random", n, len(seen))
		}
	}
}

// A connection that drops, with no word from the server, is reconnected
// too: to the next address.
func TestReconnectsAfterADroppedConnection(t *testing.T) {
	a := nodetest.Start(t, node.Config{})
	b := nodetest.Start(t, node.Config{})
	proxy := startProxy(t, a.GRPCAddr)
	r, err := client.Reconnect(context.Background(), []string{proxy.l.Addr().String(), b.GRPCAddr},
		client.WithToken(a.Token(t, "alice", false)),
		client.WithBackoff(client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	await(t, r.Events(), "welcome", isWelcome)
	r.Join(t.Context(), "tapas")
	await(t, r.Events(), "room_joined", joined("tapas"))

	proxy.drop()

	await(t, r.Events(), "a new welcome", isWelcome)
	await(t, r.Events(), "room_joined again", joined("tapas"))
	if r.Addr() != b.GRPCAddr {
		t.Errorf("after the drop: at %s, want %s", r.Addr(), b.GRPCAddr)
	}
}

// Whoever reads the welcome finds the connection taking frames: a Join
// made on it goes on that connection. Before, the welcome was handed over
// before the connection was set up, and a Join made at once (as
// TestLateAnswerToAJoinLeftLetsNoMessageGo does) was held for the next
// connection now and then. Many connections, since it was a race.
func TestWelcomeComesOnceTheConnectionTakesFrames(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	for i := range 50 {
		r, err := client.Reconnect(t.Context(), []string{srv.GRPCAddr}, client.WithToken(srv.Token(t, "alice", false)))
		if err != nil {
			t.Fatal(err)
		}
		await(t, r.Events(), "welcome", isWelcome)
		connected := client.Connected(r)
		r.Close()
		if !connected {
			t.Fatalf("connection %d: the welcome came before the connection took frames", i)
		}
	}
}
