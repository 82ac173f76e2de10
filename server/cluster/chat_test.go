package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

func TestRoomAndLobbyMessagesCrossNodes(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	alice, bob, carol := connect(t, a, "alice", false), connect(t, b, "bob", false), connect(t, b, "carol", false)
	alice.join("lounge")
	bob.join("lounge")
	alice.await("bob's room_joined", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined().GetUserId() == "bob" })

	alice.must(alice.s.Send("lounge", "hi bob"))
	m := bob.await("alice's room message", isMessage("hi bob")).GetMessage()
	if m.Sender != "alice" || m.Room != "lounge" {
		t.Errorf("bob got %+v, want from alice in lounge", m)
	}
	bob.must(bob.s.Send("lounge", "hi alice"))
	alice.await("bob's room message", isMessage("hi alice"))

	// Node A publishes the lobby message after the room one, and Redis
	// hands node B its channels' messages in that order: had carol been sent
	// the room message, it would come before the lobby one.
	alice.must(alice.s.Send("", "hello everyone"))
	for _, u := range []*user{alice, bob, carol} {
		seen := u.until("lobby message", isMessage("hello everyone"))
		if got := seen[len(seen)-1].GetMessage(); got.Room != "" || got.Sender != "alice" {
			t.Errorf("%s: lobby message %+v, want from alice with no room", u.name, got)
		}
		if u == carol {
			for _, f := range seen {
				if m := f.GetMessage(); m != nil && m.Room != "" {
					t.Errorf("carol got room message %q, want none: she is in no room", m.Message)
				}
			}
		}
	}
}

func TestPrivateMessagesCrossNodes(t *testing.T) {
	cl := startCluster(t, 3)
	alice := connect(t, cl.nodes[0], "alice", false)
	bobs := []*user{connect(t, cl.nodes[1], "bob", false), connect(t, cl.nodes[2], "bob", false), connect(t, cl.nodes[0], "bob", false)}
	tests := []struct {
		target    string
		delivered int32
		ack       string
	}{
		{"bob", 3, "Private message sent to bob"},
		{"nobody", 0, "User nobody is not connected"},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			text := "psst " + tc.target
			alice.must(alice.s.Private(tc.target, text))
			sent := alice.await("private_sent", func(f *chatv1.ServerFrame) bool { return f.GetPrivateSent() != nil }).GetPrivateSent()
			if sent.Delivered != tc.delivered || sent.TargetUser != tc.target || sent.Message != tc.ack {
				t.Errorf("private_sent = %+v, want delivered %d to %s saying %q", sent, tc.delivered, tc.target, tc.ack)
			}
		})
	}
	for i, bob := range bobs {
		pm := bob.await("private message", func(f *chatv1.ServerFrame) bool { return f.GetPrivateMessage() != nil }).GetPrivateMessage()
		if pm.Message != "psst bob" || pm.Sender != "alice" {
			t.Errorf("bob's connection %d got %+v, want psst bob from alice", i, pm)
		}
	}
}

func TestAdminBroadcastCrossNodes(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	admin := connect(t, a, "root", true)
	bob, carol := connect(t, b, "bob", false), connect(t, b, "carol", false)
	bob.join("den")

	// To everyone, over gRPC on node A.
	n, err := admin.c.Broadcast(context.Background(), "maintenance at noon", "")
	if err != nil || n != 3 {
		t.Fatalf("broadcast: got %d recipients, %v; want 3, nil", n, err)
	}
	for _, u := range []*user{admin, bob, carol} {
		ab := u.await("admin_broadcast", func(f *chatv1.ServerFrame) bool { return f.GetAdminBroadcast() != nil }).GetAdminBroadcast()
		if ab.Message != "maintenance at noon" || ab.Room != "" {
			t.Errorf("%s: got %+v, want the broadcast to everyone", u.name, ab)
		}
	}

	// To a room, over REST on node A, reaching a member on node B.
	req, _ := http.NewRequest(http.MethodPost, a.URL("/api/v1/websocket/broadcast"), strings.NewReader(`{"message":"den only","room":"den"}`))
	req.Header.Set("Authorization", "Bearer "+a.Token(t, "root", true))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Recipients int }
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || body.Recipients != 1 {
		t.Fatalf("REST room broadcast: got status %d, %d recipients, %v; want 200, 1", resp.StatusCode, body.Recipients, err)
	}
	ab := bob.await("room broadcast", func(f *chatv1.ServerFrame) bool { return f.GetAdminBroadcast() != nil }).GetAdminBroadcast()
	if ab.Message != "den only" || ab.Room != "den" {
		t.Errorf("bob got %+v, want den only in den", ab)
	}
}

// Three senders on three nodes talk at once in one room; every member, on
// every node, sees the room's messages in one same order.
func TestSameRoomOrderOnEveryNode(t *testing.T) {
	cl := startCluster(t, 3)
	const per = 40
	var members []*user
	for i, srv := range cl.nodes {
		u := connect(t, srv, fmt.Sprintf("member%d", i), false)
		u.join("agora")
		members = append(members, u)
	}
	var wg sync.WaitGroup
	for i, u := range members {
		wg.Go(func() {
			for j := range per {
				if err := u.s.Send("agora", fmt.Sprintf("%d-%02d", i, j)); err != nil {
					t.Errorf("%s: send: %v", u.name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var orders [][]string
	for _, u := range members {
		var got []string
		for len(got) < per*len(members) {
			m := u.await("agora message", func(f *chatv1.ServerFrame) bool { return f.GetMessage().GetRoom() == "agora" })
			got = append(got, m.GetMessage().Message)
		}
		orders = append(orders, got)
	}
	for i, got := range orders[1:] {
		if !slices.Equal(got, orders[0]) {
			t.Errorf("%s saw another order than %s:\n got %q\nwant %q", members[i+1].name, members[0].name, got, orders[0])
		}
	}
}

func TestStatsRoomsUsersAreClusterWide(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	alice, bob := connect(t, a, "alice", false), connect(t, b, "bob", false)
	connect(t, b, "alice", false)
	alice.join("lounge")
	bob.join("lounge")
	bob.join("den")

	var observers []*user
	for i, srv := range cl.nodes {
		observers = append(observers, connect(t, srv, fmt.Sprintf("observer%d", i), false))
	}
	for i, u := range observers {
		st, err := u.c.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// The observers count too: 5 connections, 4 users.
		if st.TotalConnections != 5 || st.UniqueUsers != 4 || st.ActiveRooms != 2 || st.Rooms["lounge"] != 2 || st.Rooms["den"] != 1 {
			t.Errorf("node %d stats: got %+v, want 5 connections, 4 users, lounge 2, den 1", i, st)
		}
		users, err := u.c.Users(context.Background())
		want := []string{"alice", "bob", "observer0", "observer1"}
		if err != nil || !slices.Equal(users, want) {
			t.Errorf("node %d users: got %q, %v; want %q", i, users, err, want)
		}
		rooms, err := u.c.Rooms(context.Background())
		if err != nil || len(rooms) != 2 || rooms["lounge"] != 2 {
			t.Errorf("node %d rooms: got %v, %v; want lounge 2, den 1", i, rooms, err)
		}
	}
	// The REST view of node A counts node B's connections.
	req, _ := http.NewRequest(http.MethodGet, a.URL("/api/v1/websocket/users"), nil)
	req.Header.Set("Authorization", "Bearer "+a.Token(t, "observer", false)) // outside dev mode reads need one
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var users struct {
		ConnectedUsers []string `json:"connected_users"`
		TotalUsers     int      `json:"total_users"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&users); err != nil || users.TotalUsers != 4 {
		t.Errorf("REST users on node A: got %+v, %v; want 4 users", users, err)
	}
}

func TestPresenceEventsFollowFirstAndLastConnection(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	alice := connect(t, a, "alice", false)
	isPresence := func(f *chatv1.ServerFrame) bool {
		return f.GetUserJoined().GetUserId() == "bob" || f.GetUserLeft().GetUserId() == "bob"
	}

	bobOnB := connect(t, b, "bob", false)
	if f := alice.await("bob's user_joined", isPresence); f.GetUserJoined() == nil {
		t.Fatalf("alice got %v, want user_joined bob", f)
	}
	bobOnA := connect(t, a, "bob", false) // second connection: nobody is told
	bobOnB.must(bobOnB.s.Close())         // not the last: nobody is told
	bobOnA.must(bobOnA.s.Close())         // the last: everyone is told
	f := alice.await("presence event", isPresence)
	if f.GetUserLeft().GetUserId() != "bob" {
		t.Errorf("after bob's second connection and first close, alice got %v; want user_left bob and nothing before", f)
	}
}

// A node subscribes to what its own sessions need: node B, with no member
// in a busy room, receives none of its traffic from Redis.
func TestNodeReceivesOnlyWhatItsSessionsNeed(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	alice, bob := connect(t, a, "alice", false), connect(t, a, "bob", false)
	carol := connect(t, b, "carol", false)
	alice.join("busy")
	bob.join("busy")

	rdb := goredis.NewClient(&goredis.Options{Addr: cl.redis.Addr})
	defer rdb.Close()
	subs, err := rdb.PubSubNumSub(context.Background(), cl.prefix+":room:busy", cl.prefix+":lobby").Result()
	if err != nil {
		t.Fatal(err)
	}
	if subs[cl.prefix+":room:busy"] != 1 || subs[cl.prefix+":lobby"] != 2 {
		t.Errorf("subscribers: got %v, want room:busy 1 (node A), lobby 2", subs)
	}

	const n = 200
	before := cl.brokers[1].Metrics().Received.Load()
	for i := range n {
		alice.must(alice.s.Send("busy", fmt.Sprintf("busy %d", i)))
	}
	bob.await("the last busy message", isMessage(fmt.Sprintf("busy %d", n-1)))
	alice.must(alice.s.Send("", "marker"))
	carol.await("lobby marker", isMessage("marker"))
	got := cl.brokers[1].Metrics().Received.Load() - before
	t.Logf("node A published %d room messages and 1 lobby message; node B received %d from Redis", n, got)
	if got != 1 {
		t.Errorf("node B received %d events, want 1 (the lobby marker)", got)
	}
}
