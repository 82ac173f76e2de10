package node_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func roomJoined(room, user string) func(*chatv1.ServerFrame) bool {
	return func(f *chatv1.ServerFrame) bool {
		j := f.GetRoomJoined()
		return j != nil && j.Room == room && j.UserId == user
	}
}

func roomLeft(room, user string) func(*chatv1.ServerFrame) bool {
	return func(f *chatv1.ServerFrame) bool {
		l := f.GetRoomLeft()
		return l != nil && l.Room == room && l.UserId == user
	}
}

// awaitNone waits for the marker message and fails if a frame matching
// unwanted comes before it.
func (u *user) awaitNone(what string, unwanted func(*chatv1.ServerFrame) bool, marker string) {
	u.t.Helper()
	u.await(marker, func(f *chatv1.ServerFrame) bool {
		if unwanted(f) {
			u.t.Errorf("%s: got %v, want no %s", u.name, f, what)
		}
		return isMessage(marker)(f)
	})
}

func TestRoomAnnouncementsStopAboveThePresenceLimit(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{PresenceLimit: 3}})
	watcher := connect(t, srv, "watcher")
	watcher.join("lounge")
	var us []*user
	for i := range 3 {
		us = append(us, connect(t, srv, fmt.Sprintf("u%d", i)))
	}
	us[0].join("lounge")
	watcher.await("u0 joined (2 members)", roomJoined("lounge", "u0"))
	us[1].join("lounge")
	watcher.await("u1 joined (3 members: at the limit)", roomJoined("lounge", "u1"))
	// u2 makes 4: it gets its own room_joined (join waits for it), nobody else.
	us[2].join("lounge")
	us[2].must(us[2].s.Send("lounge", "marker join"))
	watcher.awaitNone("room_joined for u2 over the limit", roomJoined("lounge", "u2"), "marker join")
	us[0].awaitNone("room_joined for u2 over the limit", roomJoined("lounge", "u2"), "marker join")

	// The room had 4 with u2: its leave is told to u2 alone.
	us[2].must(us[2].s.Leave("lounge"))
	us[2].await("own room_left", roomLeft("lounge", "u2"))
	us[0].must(us[0].s.Send("lounge", "marker leave"))
	watcher.awaitNone("room_left for u2 over the limit", roomLeft("lounge", "u2"), "marker leave")
	// Back at the limit, leaves are told again.
	us[1].must(us[1].s.Leave("lounge"))
	watcher.await("u1 left (3 members: at the limit)", roomLeft("lounge", "u1"))
	us[0].await("u1 left (3 members: at the limit)", roomLeft("lounge", "u1"))
}

func TestNamespaceHasItsOwnPresenceLimit(t *testing.T) {
	ns, err := hub.NewNamespaces(map[string]hub.NamespacePolicy{"team": {PresenceLimit: 2, Guests: true}})
	if err != nil {
		t.Fatal(err)
	}
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{PresenceLimit: 1, Namespaces: ns}})
	watcher, bob := connect(t, srv, "watcher"), connect(t, srv, "bob")
	for _, room := range []string{"lounge", "team:eng"} {
		watcher.join(room)
		bob.join(room)
	}
	bob.must(bob.s.Send("lounge", "marker"))
	watcher.await("bob joined team:eng (2 members, its limit)", roomJoined("team:eng", "bob"))
	watcher.awaitNone("room_joined lounge for bob (2 members, over the default limit)", roomJoined("lounge", "bob"), "marker")
}

func TestLobbyAnnouncementsStopAboveThePresenceLimit(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{PresenceLimit: 2}})
	joined := func(user string) func(*chatv1.ServerFrame) bool {
		return func(f *chatv1.ServerFrame) bool { return f.GetUserJoined() != nil && f.GetUserJoined().UserId == user }
	}
	left := func(user string) func(*chatv1.ServerFrame) bool {
		return func(f *chatv1.ServerFrame) bool { return f.GetUserLeft() != nil && f.GetUserLeft().UserId == user }
	}
	conns := func(n int) {
		t.Helper()
		eventually(t, func() string {
			if st, err := srv.Node.Hub().Stats(t.Context()); err != nil || st.TotalConnections != n {
				return fmt.Sprintf("stats = %+v, %v; want %d connections", st, err, n)
			}
			return ""
		})
	}
	watcher := connect(t, srv, "watcher")
	bob := connect(t, srv, "bob")
	watcher.await("bob joined (2 connected: at the limit)", joined("bob"))
	carol := connect(t, srv, "carol")
	watcher.must(watcher.s.Send("", "marker join"))
	watcher.awaitNone("user_joined for carol over the limit", joined("carol"), "marker join")
	bob.awaitNone("user_joined for carol over the limit", joined("carol"), "marker join")

	carol.s.Close()
	conns(2)
	watcher.must(watcher.s.Send("", "marker leave"))
	watcher.awaitNone("user_left for carol (3 connected with her)", left("carol"), "marker leave")
	bob.s.Close()
	watcher.await("bob left (2 connected with him)", left("bob"))
}

func TestMembersArePaginated(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Hub: hub.Config{PresenceLimit: 2}})
	names := []string{"erin", "alice", "dave", "bob", "carol"}
	for _, n := range names {
		connect(t, srv, n).join("lounge")
	}
	connect(t, srv, "carol").join("lounge") // a second connection: still one member
	connect(t, srv, "frank").join("den")
	want := [][]string{{"alice", "bob"}, {"carol", "dave"}, {"erin"}}
	c := dial(t, srv, srv.Token(t, "reader", false))
	if pages, total := nodetest.MemberPages(t, c, "lounge", 2); !slices.EqualFunc(pages, want, slices.Equal) || total != 5 {
		t.Errorf("gRPC pages = %q of %d, want %q of 5", pages, total, want)
	}
	if pages, total := nodetest.RESTMemberPages(t, "http://"+srv.HTTPAddr, srv.Token(t, "reader", false), "lounge", 2); !slices.EqualFunc(pages, want, slices.Equal) || total != 5 {
		t.Errorf("REST pages = %q of %d, want %q of 5", pages, total, want)
	}

	code, page, _ := nodetest.GetMembers(t, "http://"+srv.HTTPAddr, srv.Token(t, "reader", false), "lounge", nil)
	if code != http.StatusOK || len(page.Members) != 5 || page.NextCursor != "" || page.Room != "lounge" {
		t.Errorf("default page = %d %+v, want every member on one page", code, page)
	}
	if m := page.Members[2]; m != (nodetest.RESTMember{UserID: "carol", Username: "carol", Connections: 2}) {
		t.Errorf("carol = %+v, want her name and 2 connections", m)
	}
	code, page, _ = nodetest.GetMembers(t, "http://"+srv.HTTPAddr, srv.Token(t, "reader", false), "lounge", url.Values{"limit": {"100000"}})
	if code != http.StatusOK || len(page.Members) != 5 {
		t.Errorf("limit over the maximum = %d %+v, want 200 and a page of at most %d", code, page, hub.MaxMembersLimit)
	}
	code, page, _ = nodetest.GetMembers(t, "http://"+srv.HTTPAddr, srv.Token(t, "reader", false), "nowhere", nil)
	if code != http.StatusOK || len(page.Members) != 0 || page.TotalMembers != 0 {
		t.Errorf("empty room = %d %+v, want 200 and no members", code, page)
	}
	for _, bad := range []struct {
		room  string
		query url.Values
	}{
		{"lounge", url.Values{"cursor": {"!!"}}},
		{"lounge", url.Values{"limit": {"-1"}}},
		{"bad*room", nil},
		{"lounge", url.Values{"limit": {"many"}}},
	} {
		code, _, body := nodetest.GetMembers(t, "http://"+srv.HTTPAddr, srv.Token(t, "reader", false), bad.room, bad.query)
		if code != http.StatusBadRequest || body["message"] == "" || body["message"] == nil {
			t.Errorf("members of %q with %v: got %d %v, want 400 with a message", bad.room, bad.query, code, body)
		}
	}
}
