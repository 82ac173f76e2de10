package cluster_test

import (
	"fmt"
	"slices"
	"testing"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// TestPresenceLimitIsClusterWide: members are counted across the nodes, so
// a room or lobby whose members are spread over two nodes stops being
// announced at the same size as on one node, and the members API of either
// node answers for the whole cluster; leaves are announced like joins.
func TestPresenceLimitIsClusterWide(t *testing.T) {
	c := startCluster(t, 0)
	cfg := node.Config{Hub: hub.Config{PresenceLimit: 3}}
	a, b := c.addNodeWith(t, cfg), c.addNodeWith(t, cfg)
	on := []*nodetest.Server{a, b}
	userJoined := func(id string) func(*chatv1.ServerFrame) bool {
		return func(f *chatv1.ServerFrame) bool { return f.GetUserJoined() != nil && f.GetUserJoined().UserId == id }
	}
	roomJoined := func(id string) func(*chatv1.ServerFrame) bool {
		return func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined() != nil && f.GetRoomJoined().UserId == id }
	}
	noneBefore := func(u *user, what string, unwanted func(*chatv1.ServerFrame) bool, marker string) {
		t.Helper()
		u.await(marker, func(f *chatv1.ServerFrame) bool {
			if unwanted(f) {
				t.Errorf("%s: got %v, want no %s", u.name, f, what)
			}
			return isMessage(marker)(f)
		})
	}

	watcher := connect(t, a, "watcher", false)
	var us []*user
	for i := range 3 {
		u := connect(t, on[(i+1)%2], fmt.Sprintf("u%d", i), false)
		us = append(us, u)
		if i < 2 { // 2 and 3 connections: within the limit
			watcher.await(u.name+" joined", userJoined(u.id))
		}
	}
	watcher.must(watcher.s.Send("", "marker lobby"))
	noneBefore(watcher, "user_joined for u2 (4 connected)", userJoined("u2"), "marker lobby")

	watcher.join("lounge")
	for i, u := range us {
		u.join("lounge")
		if i < 2 {
			watcher.await(u.name+" joined lounge", roomJoined(u.id))
		}
	}
	us[2].must(us[2].s.Send("lounge", "marker room"))
	noneBefore(watcher, "room_joined for u2 (4 members)", roomJoined("u2"), "marker room")

	want := [][]string{{"u0", "u1", "u2"}, {"watcher"}}
	clients := []*user{watcher, us[0]} // on a and on b
	for i, n := range on {
		if pages, total := nodetest.MemberPages(t, clients[i].c, "lounge", 3); !slices.EqualFunc(pages, want, slices.Equal) || total != 4 {
			t.Errorf("node %d: gRPC pages %q of %d, want %q of 4", i, pages, total, want)
		}
		if pages, total := nodetest.RESTMemberPages(t, "http://"+n.HTTPAddr, n.Token(t, "reader", false), "lounge", 3); !slices.EqualFunc(pages, want, slices.Equal) || total != 4 {
			t.Errorf("node %d: REST pages %q of %d, want %q of 4", i, pages, total, want)
		}
	}

	// Leaves from node b, seen by the watcher on node a: u0's from a room
	// of 4 members, over the limit, is not announced; then u2's, from a
	// room of 3, is.
	roomLeft := func(id string) func(*chatv1.ServerFrame) bool {
		return func(f *chatv1.ServerFrame) bool {
			return f.GetRoomLeft() != nil && f.GetRoomLeft().Room == "lounge" && f.GetRoomLeft().UserId == id
		}
	}
	us[0].must(us[0].s.Leave("lounge"))
	us[0].await("own room_left", roomLeft(us[0].id))
	us[2].must(us[2].s.Send("lounge", "marker leave"))
	noneBefore(watcher, "room_left for u0 (4 members)", roomLeft(us[0].id), "marker leave")
	us[2].must(us[2].s.Leave("lounge"))
	watcher.await("room_left for u2 (3 members)", roomLeft(us[2].id))
}

// Joins racing on two nodes are counted once each, cluster-wide: exactly
// the joins that found the room within the limit are announced.
func TestConcurrentJoinsAnnounceUpToTheLimit(t *testing.T) {
	const limit, joiners = 4, 10
	c := startCluster(t, 0)
	cfg := node.Config{Hub: hub.Config{PresenceLimit: limit}}
	on := []*nodetest.Server{c.addNodeWith(t, cfg), c.addNodeWith(t, cfg)}
	watcher := connect(t, on[0], "watcher", false)
	watcher.join("lounge")
	us := make([]*user, joiners)
	for i := range us {
		us[i] = connect(t, on[i%2], fmt.Sprintf("j%d", i), false)
	}
	done := make(chan error, joiners)
	for _, u := range us {
		go func() { done <- u.s.Join("lounge") }()
	}
	for range joiners {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// Every joiner has its own room_joined, whether announced or not.
	for _, u := range us {
		u.await("own room_joined", func(f *chatv1.ServerFrame) bool {
			return f.GetRoomJoined() != nil && f.GetRoomJoined().UserId == u.id
		})
	}
	us[0].must(us[0].s.Send("lounge", "marker"))
	announced := 0
	watcher.await("marker", func(f *chatv1.ServerFrame) bool {
		if f.GetRoomJoined() != nil {
			announced++
		}
		return isMessage("marker")(f)
	})
	// The watcher is the first member: joins 2 to limit are announced.
	if announced != limit-1 {
		t.Errorf("watcher saw %d room_joined of %d racing joiners, want %d (limit %d)", announced, joiners, limit-1, limit)
	}
}
