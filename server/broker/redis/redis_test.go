package redis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tertulia/tertulia/server/broker/brokertest"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Fast presence timings, so that expiry shows within a test.
const (
	testHeartbeat = 50 * time.Millisecond
	testTTL       = 200 * time.Millisecond
	waitTimeout   = 5 * time.Second
)

// timings are a cluster's heartbeat and presence TTL.
type timings struct{ heartbeat, ttl time.Duration }

var (
	// fast lets a test see a node's presence expire.
	fast = timings{testHeartbeat, testTTL}
	// steady is for tests of everything else: a heartbeat late by less
	// than a second, on a busy machine under -race, expires nobody.
	steady = timings{250 * time.Millisecond, 2 * time.Second}
)

var prefixes atomic.Int64

// newCluster starts n brokers on srv, under a prefix of their own.
func newCluster(t *testing.T, srv *redistest.Server, n int, tm timings) []*Broker {
	t.Helper()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	bs := make([]*Broker, n)
	for i := range bs {
		bs[i] = newBroker(t, srv, prefix, tm)
	}
	return bs
}

// newBroker starts a broker on srv under prefix, its config changed by opts.
func newBroker(t *testing.T, srv *redistest.Server, prefix string, tm timings, opts ...func(*Config)) *Broker {
	t.Helper()
	return startBroker(t, srv, func(cfg *Config) {
		cfg.Prefix, cfg.Heartbeat, cfg.PresenceTTL = prefix, tm.heartbeat, tm.ttl
		for _, opt := range opts {
			opt(cfg)
		}
	})
}

// startBroker starts a broker on srv, with its Config set by set, and
// closes it when the test ends.
func startBroker(t *testing.T, srv *redistest.Server, set func(cfg *Config)) *Broker {
	t.Helper()
	b, err := tryBroker(t, srv, set)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	return b
}

// tryBroker is startBroker, New's error returned.
func tryBroker(t *testing.T, srv *redistest.Server, set func(cfg *Config)) (*Broker, error) {
	t.Helper()
	cfg, err := ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	set(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	b, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { b.Close() })
	return b, nil
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	brokertest.Run(t, func(t *testing.T) []hub.Broker {
		var out []hub.Broker
		for _, b := range newCluster(t, srv, 3, steady) {
			out = append(out, b)
		}
		return out
	})
}

// events collects what a broker's handler is given.
type events struct {
	mu   sync.Mutex // protects list
	list []string   // topic + " " + kind + " " + message or user
}

func (e *events) handle(topic string, ev *hub.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	what := ev.Message
	if ev.Kind == hub.KindUserLeft || ev.Kind == hub.KindUserJoined {
		what = ev.UserID
	}
	e.list = append(e.list, topic+" "+ev.Kind.String()+" "+what)
}

func (e *events) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.list, s)
}

// count is how many times s was handled.
func (e *events) count(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, got := range e.list {
		if got == s {
			n++
		}
	}
	return n
}

// eventually polls cond every 10ms until it holds or within fails.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// crash stops b as a killed process would: no goodbye to Redis.
func crash(b *Broker) {
	b.closed.Store(true)
	b.cancel()
	b.ps.Close()
	b.wg.Wait()
	b.rdb.Close()
}

// lobbyWatched starts two brokers on srv: a, whose events nobody watches,
// and b, subscribed to the lobby, recording what it receives in seen.
func lobbyWatched(t *testing.T, srv *redistest.Server) (a, b *Broker, seen *events) {
	t.Helper()
	bs := newCluster(t, srv, 2, fast)
	a, b, seen = bs[0], bs[1], &events{}
	a.SetHandler(func(string, *hub.Event) {})
	b.SetHandler(seen.handle)
	if err := b.Subscribe(context.Background(), "lobby"); err != nil {
		t.Fatal(err)
	}
	return a, b, seen
}

func TestCrashedNodeExpires(t *testing.T) {
	srv := redistest.Start(t)
	a, b, seen := lobbyWatched(t, srv)
	ctx := context.Background()
	alice := hub.PresenceRecord{ID: "a1", User: "alice", Name: "Alice"}
	bobOnA, bobOnB := hub.PresenceRecord{ID: "b1", User: "bob", Name: "Bob"}, hub.PresenceRecord{ID: "b2", User: "bob", Name: "Bob"}
	for _, step := range []struct {
		b *Broker
		c hub.PresenceRecord
	}{{a, alice}, {a, bobOnA}, {b, bobOnB}} {
		if _, _, err := step.b.AddConn(ctx, step.c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.AddMember(ctx, "lounge", alice); err != nil {
		t.Fatal(err)
	}

	crash(a)
	bound := testTTL + testHeartbeat
	took := eventually(t, bound+time.Second, "alice expires", func() bool {
		s, err := b.Snapshot(ctx)
		return err == nil && slices.Equal(s.Users, []string{"bob"}) && s.Connections == 1 && len(s.Rooms) == 0
	})
	t.Logf("presence of the crashed node expired after %v (bound %v from its last heartbeat)", took, bound)
	eventually(t, waitTimeout, "user_left for alice", func() bool { return seen.has("lobby user_left alice") })
	if seen.has("lobby user_left bob") {
		t.Errorf("got user_left for bob, who is still connected to the other node; want none")
	}
	if got := b.Metrics().Reaped.Load(); got != 2 {
		t.Errorf("reaped connections: got %d, want 2", got)
	}
}

func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	bs := newCluster(t, srv, 2, steady)
	a, b := bs[0], bs[1]
	var onA, onB events
	a.SetHandler(onA.handle)
	b.SetHandler(onB.handle)
	ctx := context.Background()
	for _, n := range bs {
		if err := n.Subscribe(ctx, "room:lounge"); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob := hub.PresenceRecord{ID: "a1", User: "alice", Name: "Alice"}, hub.PresenceRecord{ID: "b1", User: "bob", Name: "Bob"}
	for _, step := range []struct {
		b *Broker
		c hub.PresenceRecord
	}{{a, alice}, {b, bob}} {
		if _, _, err := step.b.AddConn(ctx, step.c); err != nil {
			t.Fatal(err)
		}
		if _, err := step.b.AddMember(ctx, "lounge", step.c); err != nil {
			t.Fatal(err)
		}
	}

	srv.Stop(t)
	eventually(t, waitTimeout, "a notices", func() bool { return !a.up.Load() })
	if err := a.Publish(ctx, "room:lounge", &hub.Event{Kind: hub.KindMessage, Message: "while away"}); err != nil {
		t.Fatalf("publish while redis is away: got %v, want local delivery", err)
	}
	if !onA.has("room:lounge message while away") {
		t.Errorf("a's own subscribers did not get its message while redis was away")
	}
	if got := a.Metrics().LocalOnly.Load(); got != 1 {
		t.Errorf("local-only deliveries: got %d, want 1", got)
	}
	if err := a.Subscribe(ctx, "room:new"); err == nil {
		t.Errorf("subscribe to a new topic while redis is away: got no error, want one")
	}

	srv.Restart(t) // empty: Redis lost every key and subscription
	for i := 0; ; i++ {
		text := fmt.Sprintf("probe %d", i)
		if err := a.Publish(ctx, "room:lounge", &hub.Event{Kind: hub.KindMessage, Message: text}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if onB.has("room:lounge message " + text) {
			break
		}
		if i > int(waitTimeout/(20*time.Millisecond)) {
			t.Fatalf("cross-node delivery did not resume within %v", waitTimeout)
		}
	}
	for name, n := range map[string]*Broker{"a": a, "b": b} {
		if got := n.Metrics().Reconnects.Load(); got < 1 {
			t.Errorf("%s: reconnects = %d after redis came back, want at least 1", name, got)
		}
	}
	eventually(t, waitTimeout, "presence registered again", func() bool {
		s, err := b.Snapshot(ctx)
		return err == nil && slices.Equal(s.Users, []string{"alice", "bob"}) && s.Rooms["lounge"] == 2
	})
	for _, ev := range []string{"lobby user_joined alice", "lobby user_joined bob", "lobby user_left alice"} {
		if onA.has(ev) || onB.has(ev) {
			t.Errorf("got %q after redis restarted; want no presence event: nobody left", ev)
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		want    Config
		addr    string
		wantErr string
	}{
		{url: "redis://127.0.0.1:6390/2", addr: "127.0.0.1:6390"},
		{url: "redis://localhost:6379/0?prefix=chat&heartbeat=250ms&presence_ttl=1s&dial_timeout=3s",
			want: Config{Prefix: "chat", Heartbeat: 250 * time.Millisecond, PresenceTTL: time.Second}, addr: "localhost:6379"},
		{url: "redis://localhost:6379/0?heartbeat=soon", wantErr: `heartbeat="soon"`},
		{url: "redis://localhost:6379/0?presence_ttl=-1s", wantErr: "presence_ttl"},
		{url: "http://localhost:6379", wantErr: "invalid URL scheme"},
		{url: "redis://localhost:6379/0?no_such_option=1", wantErr: "no_such_option"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			got, err := ParseURL(tc.url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Options.Addr != tc.addr || got.Prefix != tc.want.Prefix || got.Heartbeat != tc.want.Heartbeat || got.PresenceTTL != tc.want.PresenceTTL {
				t.Errorf("got addr %s prefix %q heartbeat %v ttl %v, want %s %q %v %v", got.Options.Addr,
					got.Prefix, got.Heartbeat, got.PresenceTTL, tc.addr, tc.want.Prefix, tc.want.Heartbeat, tc.want.PresenceTTL)
			}
		})
	}
}

func TestNewFailsClearly(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Config{}); err == nil || !strings.Contains(err.Error(), "Options are required") {
		t.Errorf("no options: got %v, want options required", err)
	}
	opts := &goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond}
	if _, err := New(ctx, Config{Options: opts, Heartbeat: time.Second, PresenceTTL: time.Second}); err == nil || !strings.Contains(err.Error(), "at least twice") {
		t.Errorf("ttl under two heartbeats: got %v, want a clear refusal", err)
	}
	if _, err := New(ctx, Config{Options: opts}); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable redis: got %v, want an error naming its address", err)
	}
}

// A live node whose presence expired (Redis was out of its reach longer
// than the TTL) registers it again, and the cluster, told its users had
// left, is told they are back.
func TestExpiredNodeComesBack(t *testing.T) {
	srv := redistest.Start(t)
	a, b, seen := lobbyWatched(t, srv)
	ctx := context.Background()
	alice := hub.PresenceRecord{ID: "a1", User: "alice", Name: "Alice"}
	if _, _, err := a.AddConn(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddMember(ctx, "lounge", alice); err != nil {
		t.Fatal(err)
	}

	// Node a's deadline set in the past, as if it had missed its heartbeats,
	// and b's heartbeat right away, before a's next one renews it.
	expireNode(t, srv, a, b)
	eventually(t, waitTimeout, "user_left alice", func() bool { return seen.has("lobby user_left alice") })
	eventually(t, waitTimeout, "user_joined alice", func() bool { return seen.has("lobby user_joined alice") })
	eventually(t, waitTimeout, "alice back in presence", func() bool {
		s, err := b.Snapshot(ctx)
		return err == nil && slices.Equal(s.Users, []string{"alice"}) && s.Rooms["lounge"] == 1
	})
}
