package redis

import (
	"context"
	"fmt"
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
			if _, _, err := b.AddConn(ctx, hub.Conn{ID: "c1", User: "carol", Name: "Carol"}); err != nil {
				t.Fatal(err)
			}
			for i, u := range tc.onA {
				if _, _, err := a.AddConn(ctx, hub.Conn{ID: fmt.Sprint("a", i), User: u, Name: u}); err != nil {
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
	cfg, err := ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Prefix, cfg.Heartbeat, cfg.PresenceTTL, cfg.LobbyPresenceLimit = prefix, time.Hour, 2*time.Hour, limit
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	b, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
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
