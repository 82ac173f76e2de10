package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
)

// The users of a crashed node are announced as gone only while the lobby,
// before they went, was within LobbyPresenceLimit, as the hub announces its
// own users.
func TestCrashedNodesUsersAnnouncedWithinTheLimitOnly(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		name     string
		onA      []string // users of the node that crashes
		announce bool
	}{
		{"at the limit", []string{"alice"}, true},
		{"over it", []string{"alice", "bob"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			prefix := fmt.Sprintf("t%d", prefixes.Add(1))
			// Heartbeats an hour apart: only the test's own heartbeat reaps.
			a, b := limitedBroker(t, srv, prefix, 2), limitedBroker(t, srv, prefix, 2)
			seen := &events{}
			a.SetHandler(func(string, *hub.Event) {})
			b.SetHandler(seen.handle)
			if err := b.Subscribe(ctx, "lobby"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.AddConn(ctx, hub.PresenceRecord{ID: "c1", User: "carol", Name: "Carol"}); err != nil {
				t.Fatal(err)
			}
			for i, u := range tc.onA {
				if _, _, err := a.AddConn(ctx, hub.PresenceRecord{ID: fmt.Sprint("a", i), User: u, Name: u}); err != nil {
					t.Fatal(err)
				}
			}
			crash(a)
			// The heartbeat's announcements are delivered here when it returns.
			expireNode(t, srv, a, b)
			if got := b.Metrics().Reaped.Load(); got != int64(len(tc.onA)) {
				t.Fatalf("reaped %d connections, want %d", got, len(tc.onA))
			}
			for _, u := range tc.onA {
				if got := seen.has("lobby user_left " + u); got != tc.announce {
					t.Errorf("user_left %s announced: %v, want %v", u, got, tc.announce)
				}
			}
		})
	}
}

func limitedBroker(t *testing.T, srv *redistest.Server, prefix string, limit int) *Broker {
	t.Helper()
	return startBroker(t, srv, func(cfg *Config) {
		cfg.Prefix, cfg.Heartbeat, cfg.PresenceTTL, cfg.LobbyPresenceLimit = prefix, time.Hour, 2*time.Hour, limit
	})
}

// expireNode sets the deadline of a's presence in the past, as if it had
// missed its heartbeats, and runs b's heartbeat, which reaps it.
func expireNode(t *testing.T, srv *redistest.Server, a, b *Broker) {
	t.Helper()
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if err := rdb.ZAdd(ctx, a.prefix+"nodes", goredis.Z{Score: 1, Member: a.NodeID()}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
}

// commandCalls is how many commands Redis has run, those of scripts included.
func commandCalls(t *testing.T, rdb *goredis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(info, "\n") {
		_, rest, ok := strings.Cut(line, ":calls=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		total += n
	}
	return total
}

// A connection joining and leaving a room of 1,000 costs Redis the same
// commands as in an empty room: nothing walks the members.
func TestJoinCostDoesNotGrowWithTheRoom(t *testing.T) {
	srv := redistest.Start(t)
	// Heartbeats an hour apart: only the cycles below run commands.
	b := limitedBroker(t, srv, fmt.Sprintf("t%d", prefixes.Add(1)), 0)
	b.SetHandler(func(string, *hub.Event) {})
	ctx := context.Background()
	for i := range 1000 {
		c := hub.PresenceRecord{ID: fmt.Sprint("m", i), User: fmt.Sprint("member-", i), Name: "m"}
		if _, _, err := b.AddConn(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AddMember(ctx, "big", c); err != nil {
			t.Fatal(err)
		}
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	cycle := func(room string) int {
		t.Helper()
		c := hub.PresenceRecord{ID: "x-" + room, User: "newcomer-" + room, Name: "n"}
		before := commandCalls(t, rdb)
		if _, _, err := b.AddConn(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AddMember(ctx, room, c); err != nil {
			t.Fatal(err)
		}
		if _, err := b.RemoveMember(ctx, room, c); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.RemoveConn(ctx, c); err != nil {
			t.Fatal(err)
		}
		return commandCalls(t, rdb) - before
	}
	empty, big := cycle("empty"), cycle("big")
	// The empty room's last member also deletes its count: one more there.
	if big > empty+2 {
		t.Errorf("join and leave: %d Redis commands in a room of 1000, %d in an empty one; want no more", big, empty)
	}
	t.Logf("commands per connect, join, leave, disconnect: %d (empty room), %d (1000 members)", empty, big)
}

// A node whose presence expired registers every connection and membership
// again, in pipelined batches; past the lobby's presence limit they come
// back without an announcement, as they left without one.
func TestExpiredNodeRegistersManyConnectionsAgain(t *testing.T) {
	const conns, limit = reregisterBatch + 100, 3
	srv := redistest.Start(t)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	a, b := limitedBroker(t, srv, prefix, limit), limitedBroker(t, srv, prefix, limit)
	seen := &events{}
	a.SetHandler(func(string, *hub.Event) {})
	b.SetHandler(seen.handle)
	ctx := context.Background()
	if err := b.Subscribe(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	for i := range conns {
		c := hub.PresenceRecord{ID: fmt.Sprint("c", i), User: fmt.Sprintf("u%03d", i), Name: "n"}
		if _, _, err := a.AddConn(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := a.AddMember(ctx, "lounge", c); err != nil {
			t.Fatal(err)
		}
	}
	expireNode(t, srv, a, b)
	if s, err := b.Snapshot(ctx); err != nil || s.Connections != 0 {
		t.Fatalf("after expiry: %+v, %v; want nobody", s, err)
	}
	if status, err := a.heartbeat(ctx); err != nil || status != 1 {
		t.Fatalf("heartbeat of the expired node = %d, %v; want 1 (reaped), no error", status, err)
	}
	s, err := b.Snapshot(ctx)
	if err != nil || s.Connections != conns || len(s.Users) != conns || s.Rooms["lounge"] != conns {
		t.Fatalf("registered again: %d connections, %d users, rooms %v, %v; want %d in lounge",
			s.Connections, len(s.Users), s.Rooms, err, conns)
	}
	if ms, total, err := b.Members(ctx, "lounge", "u599", 10); err != nil || total != conns || len(ms) != 10 || ms[0].UserID != "u600" {
		t.Errorf("members after u599: %v of %d, %v; want u600 onwards of %d", ms, total, err, conns)
	}
	joined := 0
	for i := range conns {
		if seen.has(fmt.Sprintf("lobby user_joined u%03d", i)) {
			joined++
		}
	}
	if joined != 0 {
		t.Errorf("%d users announced back, want none: %d connections are over the presence limit", joined, conns)
	}
}
