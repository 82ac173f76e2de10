package hub_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
)

// fieldsEncoder writes the fields of an event a client sees, so that a test
// can read them back: kind|code|id|room|target|delivered.
type fieldsEncoder struct{}

func (fieldsEncoder) Encode(ev *hub.Event) ([]byte, error) {
	return fmt.Appendf(nil, "%s|%s|%s|%s|%s|%d", ev.Kind, ev.Code, ev.ID, ev.Room, ev.TargetUser, ev.Delivered), nil
}

// answer waits for the frame tr was sent with the client id id, other than
// its ack (history_test.go checks those).
func answer(t *testing.T, tr *recordingTransport, id string) string {
	t.Helper()
	return frameWhere(t, tr, "the answer to the frame with id "+id, func(fields []string) bool {
		return fields[2] == id && fields[0] != "ack"
	})
}

// frameWhere waits for the first frame tr was sent whose fields match.
func frameWhere(t *testing.T, tr *recordingTransport, what string, match func(fields []string) bool) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		tr.mu.Lock()
		for _, f := range tr.frames {
			if match(strings.Split(string(f), "|")) {
				tr.mu.Unlock()
				return string(f)
			}
		}
		tr.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no frame: %s", what)
		}
	}
}

// Every command the hub carries out, and every refusal, as the sender sees
// it. A refused command changes nothing.
func TestHandle(t *testing.T) {
	const maxRooms, maxBytes = 2, 16
	msg := func(room, text string) hub.Command {
		return hub.Command{Kind: hub.CmdMessage, Room: room, Message: text}
	}
	join := func(room string) hub.Command { return hub.Command{Kind: hub.CmdJoinRoom, Room: room} }
	leave := func(room string) hub.Command { return hub.Command{Kind: hub.CmdLeaveRoom, Room: room} }
	private := func(to, text string) hub.Command {
		return hub.Command{Kind: hub.CmdPrivateMessage, TargetUser: to, Message: text}
	}
	for _, tc := range []struct {
		name  string
		setup []hub.Command // carried out first, by the same session
		cmd   hub.Command
		want  string // the answer: kind|code|id|room|target|delivered
	}{
		// What is carried out.
		{"message to the lobby", nil, msg("", "hi"), "message||x|||0"},
		{"message to a room", []hub.Command{join("a")}, msg("a", "hi"), "message||x|a||0"},
		{"join", nil, join("a"), "room_joined||x|a||0"},
		{"join with no room joins general", nil, join(""), "room_joined||x|" + hub.DefaultRoom + "||0"},
		{"leave", []hub.Command{join("a")}, leave("a"), "room_left||x|a||0"},
		{"leave with no room leaves general", []hub.Command{join("")}, leave(""), "room_left||x|" + hub.DefaultRoom + "||0"},
		{"private to a connected user", nil, private("bob", "hi"), "private_sent||x||bob|1"},
		{"private to nobody connected", nil, private("carol", "hi"), "private_sent||x||carol|0"},

		// What is refused, one case per code and rule.
		{"empty message", nil, msg("", ""), "error|" + hub.CodeEmptyMessage + "|x|||0"},
		{"blank message", nil, msg("", " \t\n"), "error|" + hub.CodeEmptyMessage + "|x|||0"},
		{"message too long", nil, msg("", strings.Repeat("x", maxBytes+1)), "error|" + hub.CodeMessageTooLong + "|x|||0"},
		{"message not UTF-8", nil, msg("", "\xff\xfe"), "error|" + hub.CodeInvalidMessage + "|x|||0"},
		{"message to a bad room name", nil, msg("no/slash", "hi"), "error|" + hub.CodeInvalidRoom + "|x|||0"},
		{"message to a room not joined", nil, msg("a", "hi"), "error|" + hub.CodeNotInRoom + "|x|||0"},
		{"join a bad room name", nil, join("a\x00b"), "error|" + hub.CodeInvalidRoom + "|x|||0"},
		{"join a room name too long", nil, join(strings.Repeat("a", 65)), "error|" + hub.CodeInvalidRoom + "|x|||0"},
		{"join twice", []hub.Command{join("a")}, join("a"), "error|" + hub.CodeAlreadyInRoom + "|x|||0"},
		{"join too many rooms", []hub.Command{join("a"), join("b")}, join("c"), "error|" + hub.CodeTooManyRooms + "|x|||0"},
		{"leave a room not joined", nil, leave("a"), "error|" + hub.CodeNotInRoom + "|x|||0"},
		{"leave a bad room name", nil, leave("a/b"), "error|" + hub.CodeInvalidRoom + "|x|||0"},
		{"private with no target", nil, private("", "hi"), "error|" + hub.CodeInvalidTarget + "|x|||0"},
		{"private to a target id too long", nil, private(strings.Repeat("u", hub.MaxUserIDBytes+1), "hi"), "error|" + hub.CodeInvalidTarget + "|x|||0"},
		{"private empty", nil, private("bob", ""), "error|" + hub.CodeEmptyMessage + "|x|||0"},
		{"private too long", nil, private("bob", strings.Repeat("x", maxBytes+1)), "error|" + hub.CodeMessageTooLong + "|x|||0"},
		{"unknown command", nil, hub.Command{}, "error|" + hub.CodeUnknownType + "|x|||0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := hub.New(hub.Config{MaxRooms: maxRooms, MaxMessageBytes: maxBytes}, memory.New())
			alice, bob := &recordingTransport{enc: fieldsEncoder{}}, &recordingTransport{enc: fieldsEncoder{}}
			as, err := h.Open(ctx, hub.Identity{UserID: "alice", Name: "Alice"}, alice)
			if err != nil {
				t.Fatal(err)
			}
			defer as.Close(ctx)
			bs, err := h.Open(ctx, hub.Identity{UserID: "bob", Name: "Bob"}, bob)
			if err != nil {
				t.Fatal(err)
			}
			defer bs.Close(ctx)
			for i, c := range tc.setup {
				c.ID = fmt.Sprintf("setup%d", i)
				as.Handle(ctx, c)
				if got := answer(t, alice, c.ID); strings.HasPrefix(got, "error") {
					t.Fatalf("setup %d: %s", i, got)
				}
			}
			before, err := h.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}

			tc.cmd.ID = "x"
			as.Handle(ctx, tc.cmd)
			if got := answer(t, alice, "x"); got != tc.want {
				t.Errorf("answer %q, want %q", got, tc.want)
			}
			if !strings.HasPrefix(tc.want, "error") {
				return
			}
			after, err := h.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(after.Rooms, before.Rooms) || after.TotalConnections != before.TotalConnections {
				t.Errorf("a refused command changed the rooms from %v to %v", before.Rooms, after.Rooms)
			}
		})
	}
}

// A private message reaches every connection of its target, and the
// target sees who sent it.
func TestHandlePrivateReachesTarget(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{}, memory.New())
	alice := &recordingTransport{enc: fieldsEncoder{}}
	as, err := h.Open(ctx, hub.Identity{UserID: "alice", Name: "Alice"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close(ctx)
	var bobs []*recordingTransport
	for range 2 {
		tr := &recordingTransport{enc: fieldsEncoder{}}
		s, err := h.Open(ctx, hub.Identity{UserID: "bob", Name: "Bob"}, tr)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		bobs = append(bobs, tr)
	}
	as.Handle(ctx, hub.Command{Kind: hub.CmdPrivateMessage, ID: "x", TargetUser: "bob", Message: "hi"})
	if got, want := answer(t, alice, "x"), "private_sent||x||bob|2"; got != want {
		t.Errorf("sender's answer %q, want %q", got, want)
	}
	for i, tr := range bobs {
		got := frameWhere(t, tr, "private_message", func(fields []string) bool { return fields[0] == "private_message" })
		if want := "private_message|||||0"; got != want { // a client's id goes to that client only
			t.Errorf("bob's connection %d got %q, want %q", i, got, want)
		}
	}
}

// redisHub is a hub on a broker of a real redis-server of its own, with
// query added to its URL; both end with the test.
func redisHub(t *testing.T, query string) (*redistest.Server, *hub.Hub) {
	t.Helper()
	srv := redistest.Start(t)
	cfg, err := redis.ParseURL(srv.URL() + query)
	if err != nil {
		t.Fatal(err)
	}
	b, err := redis.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return srv, hub.New(hub.Config{}, b)
}

// A session the broker cannot subscribe leaves no group behind in the hub:
// a guest's topic is new on every connect, and each attempt while Redis is
// away kept one before.
func TestOpenRefusedLeavesNoGroup(t *testing.T) {
	ctx := context.Background()
	srv, h := redisHub(t, "")
	srv.Stop(t)
	if _, err := h.Open(ctx, hub.Identity{UserID: "guest-1", Name: "guest-1", Guest: true}, &recordingTransport{enc: fieldsEncoder{}}); err == nil {
		t.Fatal("Open while Redis is down succeeded, want an error")
	}
	for _, topic := range []string{"lobby", "user:guest-1"} {
		if n := hub.CatchingUp(h, topic); n != -1 {
			t.Errorf("after the refused open, the hub still has a group for %s", topic)
		}
	}
}

// While the broker is unreachable, what needs the cluster is refused with
// unavailable and the session goes on.
func TestHandleUnavailable(t *testing.T) {
	ctx := context.Background()
	srv, h := redisHub(t, "?heartbeat=100ms&presence_ttl=300ms")
	alice := &recordingTransport{enc: fieldsEncoder{}}
	as, err := h.Open(ctx, hub.Identity{UserID: "alice", Name: "Alice"}, alice)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	for _, tc := range []struct {
		name string
		cmd  hub.Command
	}{
		{"join", hub.Command{Kind: hub.CmdJoinRoom, Room: "a"}},
		{"private", hub.Command{Kind: hub.CmdPrivateMessage, TargetUser: "bob", Message: "hi"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cmd.ID = tc.name
			as.Handle(ctx, tc.cmd)
			if got, want := answer(t, alice, tc.name), "error|"+hub.CodeUnavailable+"|"+tc.name+"|||0"; got != want {
				t.Errorf("answer %q, want %q", got, want)
			}
		})
	}
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	as.Close(closeCtx)
}

// A frame that arrives after its session was closed (a transport's reader
// may hand one over while the session ends) is dropped: it neither panics
// nor leaves the closed session in a room.
func TestHandleAfterClose(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{}, memory.New())
	s, err := h.Open(ctx, hub.Identity{UserID: "alice", Name: "Alice"}, &recordingTransport{enc: fieldsEncoder{}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close(ctx)
	s.Handle(ctx, hub.Command{Kind: hub.CmdJoinRoom, ID: "x", Room: "a"})
	st, err := h.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Rooms) != 0 || st.TotalConnections != 0 {
		t.Errorf("after a join on a closed session: rooms %v, connections %d; want none", st.Rooms, st.TotalConnections)
	}
	// The broker forgets a member whose connection it no longer knows, so
	// the hub's own groups are what show a closed session left subscribed.
	if n := h.Rooms(); n != 0 || hub.CatchingUp(h, "room:a") != -1 {
		t.Errorf("after a join on a closed session: the hub has %d local rooms, room:a's group exists: %v; want none", n, hub.CatchingUp(h, "room:a") != -1)
	}
}
