package nodetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// This file holds the history scenarios of DESIGN.md ("History,
// acknowledgements, recovery") that the node tests (memory broker) and the
// cluster tests (Redis, several nodes) both run.

// Peer is one gRPC session of a user, for history tests.
type Peer struct {
	t       testing.TB
	Name    string
	C       *client.Client
	S       *client.Session
	Welcome *chatv1.System
}

// Open connects user name to the node at grpcAddr with token and waits for
// the welcome. Cut or the end of the test closes it.
func Open(t testing.TB, grpcAddr, token, name string) *Peer {
	t.Helper()
	c, err := client.Dial(grpcAddr, client.WithToken(token))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.Connect(context.Background())
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	p := &Peer{t: t, Name: name, C: c, S: s}
	p.Welcome = p.Await("welcome", func(f *chatv1.ServerFrame) bool { return f.GetSystem() != nil }).GetSystem()
	return p
}

// Cut ends the session and its connection, as a dropped network would.
func (p *Peer) Cut() {
	p.S.Close()
	p.C.Close()
}

// Await skips frames until one satisfies match, and returns it.
func (p *Peer) Await(what string, match func(*chatv1.ServerFrame) bool) *chatv1.ServerFrame {
	p.t.Helper()
	return Await(p.t, p.Name, p.S, what, match)
}

// Drain reads and drops the session's frames in the background until it ends.
func (p *Peer) Drain() {
	go func() {
		for range p.S.Events() {
		}
	}()
}

// Send sends f, failing the test if the stream is broken.
func (p *Peer) Send(f *chatv1.ClientFrame) {
	p.t.Helper()
	if err := p.S.SendFrame(f); err != nil {
		p.t.Fatalf("%s: send: %v", p.Name, err)
	}
}

// JoinFrom joins room with since or history and returns the session's own
// room_joined.
func (p *Peer) JoinFrom(room string, since *chatv1.Position, history int32) *chatv1.RoomJoined {
	p.t.Helper()
	id := "join-" + room
	p.Send(&chatv1.ClientFrame{Id: id, Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: room, Since: since, History: history}}})
	return p.Await("own room_joined "+room, func(f *chatv1.ServerFrame) bool {
		return f.GetRoomJoined() != nil && f.Id == id
	}).GetRoomJoined()
}

// RoomMessage is the frame of a room message with an id.
func RoomMessage(id, room, text string) *chatv1.ClientFrame {
	return &chatv1.ClientFrame{Id: id, Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: room, Message: text}}}
}

// PrivateMessage is the frame of a private message with an id.
func PrivateMessage(id, to, text string) *chatv1.ClientFrame {
	return &chatv1.ClientFrame{Id: id, Kind: &chatv1.ClientFrame_PrivateMessage{PrivateMessage: &chatv1.SendPrivateMessage{TargetUser: to, Message: text}}}
}

// IsAck matches the ack of the frame with id.
func IsAck(id string) func(*chatv1.ServerFrame) bool {
	return func(f *chatv1.ServerFrame) bool { return f.GetAck() != nil && f.Id == id }
}

func texts(n int, format string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// RoomRecovery: a member's connection is cut while messages flow into its
// room; more are published while it is away; it reconnects to the node at
// afterAddr and joins with since. It sees every message exactly once, in
// order, with offsets 1, 2, 3…, while the publisher never stops. pubAddr
// and beforeAddr are the nodes of the publisher and of the first session.
func RoomRecovery(t *testing.T, token func(user string) string, pubAddr, beforeAddr, afterAddr string) {
	const room, total, cutAfter = "recovery", 150, 20
	bob := Open(t, pubAddr, token("bob"), "bob")
	bob.JoinFrom(room, nil, 0)
	bob.Drain()
	alice := Open(t, beforeAddr, token("alice"), "alice")
	alice.JoinFrom(room, nil, 0)

	var sent atomic.Int64
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := range total {
			if bob.S.SendFrame(RoomMessage(fmt.Sprintf("b%d", i), room, fmt.Sprintf("m%03d", i))) != nil {
				return
			}
			sent.Add(1)
			time.Sleep(time.Millisecond) // pacing, so that messages flow during the cut and the join
		}
	}()
	defer func() { <-pubDone }()

	var got []string
	var last *chatv1.Message
	for len(got) < cutAfter {
		m := alice.Await("message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage()
		got, last = append(got, m.Message), m
	}
	alice.Cut()
	away := sent.Load()
	for deadline := time.Now().Add(WaitTimeout); sent.Load() < away+10; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("publisher stuck at %d messages", sent.Load())
		}
	}

	alice = Open(t, afterAddr, token("alice"), "alice")
	j := alice.JoinFrom(room, &chatv1.Position{Offset: last.Offset, Epoch: last.Epoch}, 0)
	if j.Recovered == nil || !*j.Recovered || j.Epoch != last.Epoch || j.Offset < last.Offset {
		t.Fatalf("room_joined after the cut: recovered %v, position %d %q; want true, at least %d in %q",
			j.Recovered, j.Offset, j.Epoch, last.Offset, last.Epoch)
	}
	var offsets []uint64
	for len(got) < total {
		m := alice.Await("message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage()
		got, offsets = append(got, m.Message), append(offsets, m.Offset)
	}
	if want := texts(total, "m%03d"); !slices.Equal(got, want) {
		t.Errorf("alice saw %q,\nwant every message once in order: %q", got, want)
	}
	for i, off := range offsets {
		if off != last.Offset+uint64(i)+1 {
			t.Fatalf("after the recovery alice saw offsets %v, want %d, %d, …", offsets, last.Offset+1, last.Offset+2)
		}
	}
}

// PrivateRecovery: a user's connection is cut while private messages reach
// it; more are sent while it is away; it reconnects to the node at
// afterAddr and asks for recover_private since the last it saw. It sees
// every private message exactly once, in order, then new ones live.
func PrivateRecovery(t *testing.T, token func(user string) string, pubAddr, beforeAddr, afterAddr string) {
	const total, cutAfter, away = 30, 5, 15
	bob := Open(t, pubAddr, token("bob"), "bob")
	alice := Open(t, beforeAddr, token("alice"), "alice")
	send := func(i int) {
		t.Helper()
		id := fmt.Sprintf("p%d", i)
		bob.Send(PrivateMessage(id, "alice", fmt.Sprintf("p%03d", i)))
		bob.Await("ack "+id, IsAck(id))
	}
	isPrivate := func(f *chatv1.ServerFrame) bool { return f.GetPrivateMessage() != nil }
	var got []string
	var last *chatv1.PrivateMessage
	for i := range cutAfter {
		send(i)
		last = alice.Await("private message", isPrivate).GetPrivateMessage()
		got = append(got, last.Message)
	}
	alice.Cut()
	for i := cutAfter; i < away; i++ {
		send(i)
	}
	alice = Open(t, afterAddr, token("alice"), "alice")
	if in := alice.Welcome.GetInbox(); in.GetOffset() < uint64(away) || in.GetEpoch() != last.Epoch {
		t.Errorf("welcome inbox %v, want at least offset %d in %q", in, away, last.Epoch)
	}
	alice.Send(&chatv1.ClientFrame{Id: "r1", Kind: &chatv1.ClientFrame_RecoverPrivate{
		RecoverPrivate: &chatv1.RecoverPrivate{Since: &chatv1.Position{Offset: last.Offset, Epoch: last.Epoch}}}})
	var done *chatv1.PrivateRecovered
	alice.Await("private_recovered", func(f *chatv1.ServerFrame) bool {
		if m := f.GetPrivateMessage(); m != nil {
			got = append(got, m.Message)
		}
		done = f.GetPrivateRecovered()
		return done != nil
	})
	if !done.Recovered || done.Epoch != last.Epoch {
		t.Errorf("private_recovered %v, want recovered in epoch %q", done, last.Epoch)
	}
	for i := away; i < total; i++ {
		send(i)
		got = append(got, alice.Await("private message", isPrivate).GetPrivateMessage().Message)
	}
	if want := texts(total, "p%03d"); !slices.Equal(got, want) {
		t.Errorf("alice saw %q,\nwant every private message once in order: %q", got, want)
	}
}

// Resend: a message and a private message sent twice with the same id, the
// second time from a new connection on the node at resendAddr, are each
// delivered once, and both answers carry the same ack.
func Resend(t *testing.T, token func(user string) string, firstAddr, resendAddr, bobAddr string) {
	const room = "resend"
	bob := Open(t, bobAddr, token("bob"), "bob")
	bob.JoinFrom(room, nil, 0)
	alice := Open(t, firstAddr, token("alice"), "alice")
	alice.JoinFrom(room, nil, 0)
	frames := []*chatv1.ClientFrame{RoomMessage("m1", room, "hello once"), PrivateMessage("p1", "bob", "psst once")}
	var acks [2][]*chatv1.Ack
	for _, f := range frames {
		alice.Send(f)
		acks[0] = append(acks[0], alice.Await("ack", IsAck(f.Id)).GetAck())
	}
	alice.Cut()
	alice = Open(t, resendAddr, token("alice"), "alice")
	alice.JoinFrom(room, nil, 0)
	for _, f := range frames {
		alice.Send(f)
		acks[1] = append(acks[1], alice.Await("ack", IsAck(f.Id)).GetAck())
	}
	for i := range frames {
		a, b := acks[0][i], acks[1][i]
		if a.Offset == 0 || a.Offset != b.Offset || a.Epoch != b.Epoch || a.Room != b.Room {
			t.Errorf("%s: acks %v then %v, want the same non-zero offset", frames[i].Id, a, b)
		}
	}
	// A marker after the resends: bob must see each message once before it.
	alice.Send(RoomMessage("m2", room, "marker"))
	var seen []string
	bob.Await("marker", func(f *chatv1.ServerFrame) bool {
		if m := f.GetMessage(); m != nil {
			seen = append(seen, m.Message)
		}
		if m := f.GetPrivateMessage(); m != nil {
			seen = append(seen, m.Message)
		}
		return f.GetMessage().GetMessage() == "marker"
	})
	slices.Sort(seen)
	if want := []string{"hello once", "marker", "psst once"}; !slices.Equal(seen, want) {
		t.Errorf("bob saw %q, want %q: each once", seen, want)
	}
}

// JoinWhilePublishing: users join a room on the node at joinAddr, with no
// history, or the last 4 or 8 messages, while a publisher on the node at
// pubAddr posts as fast as it can. Each joiner's messages follow its
// room_joined with consecutive offsets, no gap and no duplicate.
func JoinWhilePublishing(t *testing.T, token func(user string) string, pubAddr, joinAddr string) {
	const room, total = "busy", 300
	pub := Open(t, pubAddr, token("pub"), "pub")
	pub.JoinFrom(room, nil, 0)
	pub.Drain()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for i := range total {
			if pub.S.SendFrame(RoomMessage("", room, fmt.Sprintf("m%03d", i))) != nil {
				return
			}
		}
	})
	for i := range 8 {
		history := int32(i % 3 * 4)
		name := fmt.Sprintf("u%d", i)
		u := Open(t, joinAddr, token(name), name)
		j := u.JoinFrom(room, nil, history)
		want := j.Offset + 1 - min(uint64(history), j.Offset)
		for want <= total {
			m := u.Await("message", func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil }).GetMessage()
			if m.Offset != want || m.Message != fmt.Sprintf("m%03d", want-1) {
				t.Fatalf("%s joined at %d with history %d: got offset %d %q, want %d", u.Name, j.Offset, history, m.Offset, m.Message, want)
			}
			want++
		}
		u.Cut()
	}
}
