package node_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// getJSON fetches a REST route with token (none if "") and decodes its body.
func getJSON(t *testing.T, url, token string) map[string]any {
	t.Helper()
	code, body := request(t, http.MethodGet, url, token)
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, code)
	}
	return body
}

// eventually retries check until it returns "" or the wait runs out.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStatsRoomsUsersFollowSessions(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	tok := srv.Token(t, "observer", false) // reads need a token outside dev mode
	want := func(conns, users int, rooms map[string]any, names []string) {
		t.Helper()
		eventually(t, func() string {
			stats := getJSON(t, srv.URL("/api/v1/websocket/stats"), tok)
			wantStats := map[string]any{"total_connections": float64(conns), "unique_users": float64(users),
				"active_rooms": float64(len(rooms)), "rooms": rooms}
			if !reflect.DeepEqual(stats, wantStats) {
				return "stats = " + jsonString(stats) + ", want " + jsonString(wantStats)
			}
			gotRooms := getJSON(t, srv.URL("/api/v1/websocket/rooms"), tok)
			if wr := map[string]any{"rooms": rooms, "total_rooms": float64(len(rooms))}; !reflect.DeepEqual(gotRooms, wr) {
				return "rooms = " + jsonString(gotRooms) + ", want " + jsonString(wr)
			}
			gotUsers := getJSON(t, srv.URL("/api/v1/websocket/users"), tok)
			wn := make([]any, len(names))
			for i, n := range names {
				wn[i] = n
			}
			if wu := map[string]any{"connected_users": wn, "total_users": float64(len(names))}; !reflect.DeepEqual(gotUsers, wu) {
				return "users = " + jsonString(gotUsers) + ", want " + jsonString(wu)
			}
			return ""
		})
	}
	want(0, 0, map[string]any{}, []string{})

	alice := connect(t, srv, "alice")
	alice2 := connect(t, srv, "alice")
	bob := connect(t, srv, "bob")
	want(3, 2, map[string]any{}, []string{"alice", "bob"})

	alice.join("general")
	alice2.join("general")
	bob.join("general")
	bob.join("dev")
	want(3, 2, map[string]any{"general": float64(3), "dev": float64(1)}, []string{"alice", "bob"})

	bob.must(bob.s.Leave("dev"))
	want(3, 2, map[string]any{"general": float64(3)}, []string{"alice", "bob"})

	bob.s.Close() // a disconnect leaves its rooms
	want(2, 1, map[string]any{"general": float64(2)}, []string{"alice"})

	// The same counts over gRPC.
	st, err := alice.c.Stats(context.Background())
	if err != nil || st.TotalConnections != 2 || st.UniqueUsers != 1 || st.ActiveRooms != 1 || st.Rooms["general"] != 2 {
		t.Errorf("gRPC stats = %v, %v; want 2 connections, 1 user, general: 2", st, err)
	}
	users, err := alice.c.Users(context.Background())
	if err != nil || !slices.Equal(users, []string{"alice"}) {
		t.Errorf("gRPC users = %v, %v; want [alice]", users, err)
	}
	rooms, err := alice.c.Rooms(context.Background())
	if err != nil || !maps.Equal(rooms, map[string]int32{"general": 2}) {
		t.Errorf("gRPC rooms = %v, %v; want general: 2", rooms, err)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
