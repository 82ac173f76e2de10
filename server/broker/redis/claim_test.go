package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
)

// sameID starts brokers on one Redis and prefix, all with the node id n1.
type sameID struct {
	t   *testing.T
	srv *redistest.Server
	set func(*Config)
}

func newSameID(t *testing.T, tm timings) *sameID {
	srv := redistest.Start(t)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	return &sameID{t: t, srv: srv, set: func(cfg *Config) {
		cfg.Prefix, cfg.Heartbeat, cfg.PresenceTTL, cfg.NodeID = prefix, tm.heartbeat, tm.ttl, "n1"
	}}
}

func (s *sameID) start() *Broker { s.t.Helper(); return startBroker(s.t, s.srv, s.set) }

// twinOf starts a twin of a, as after a was cut off from Redis for longer
// than PresenceTTL: its claim of n1 expired, and a broker started with the
// id, removing its presence as a dead broker's. It returns once a finds
// itself fenced off.
func (s *sameID) twinOf(a *Broker) *Broker {
	s.t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: s.srv.Addr})
	defer rdb.Close()
	if err := rdb.Del(context.Background(), a.prefix+"claim:n1").Err(); err != nil {
		s.t.Fatal(err)
	}
	twin := s.start()
	eventually(s.t, waitTimeout, "a finds its id claimed elsewhere", a.Fenced)
	return twin
}

// refused checks that a broker with the id does not start, and why.
func (s *sameID) refused() {
	s.t.Helper()
	b, err := tryBroker(s.t, s.srv, s.set)
	if err == nil {
		b.Close()
		s.t.Fatal("a second broker with node id n1 started while the first is live")
	}
	if !errors.Is(err, ErrNodeIDTaken) || !strings.Contains(err.Error(), `"n1"`) {
		s.t.Fatalf("second broker with node id n1: %v; want ErrNodeIDTaken, naming the id", err)
	}
}

// A broker does not start with the node id of a live broker of the
// cluster: the two would share one presence. It starts once the first has
// closed.
func TestNodeIDInUseIsRefused(t *testing.T) {
	s := newSameID(t, steady)
	a := s.start()
	s.refused()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	s.start()
	s.refused()
}

// A broker that died without closing (as with kill -9) holds its node id
// until its presence expires, PresenceTTL after its last heartbeat: then a
// broker with the same id starts, and takes over none of the dead one's
// presence.
func TestNodeIDOfADeadBrokerIsFreedWithItsPresence(t *testing.T) {
	// A TTL long enough for the check right after the crash on a busy
	// machine, short enough for the test.
	s := newSameID(t, timings{100 * time.Millisecond, time.Second})
	a := s.start()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	alice := hub.PresenceRecord{ID: "a1", User: "alice", Name: "Alice"}
	if _, _, err := a.AddConn(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddMember(ctx, "lounge", alice); err != nil {
		t.Fatal(err)
	}
	crash(a)
	s.refused()

	var b *Broker
	eventually(t, waitTimeout, "a broker with the dead one's id starts", func() bool {
		var err error
		b, err = tryBroker(t, s.srv, s.set)
		if err != nil && !errors.Is(err, ErrNodeIDTaken) {
			t.Fatal(err)
		}
		return err == nil
	})
	snap, err := b.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 0 || len(snap.Rooms) != 0 {
		t.Errorf("after a restart with the dead broker's id: users %v, rooms %v; want none", snap.Users, snap.Rooms)
	}
}

// A live broker whose id another broker has claimed meanwhile (it was cut
// off from Redis for longer than PresenceTTL) renews neither, and does not
// take Redis for unreachable: Redis answers.
func TestHeartbeatOfAnIDClaimedElsewhereTouchesNothing(t *testing.T) {
	// A heartbeat of 250ms, as steady's: a shorter one may time out on a
	// busy machine, and Redis be taken for unreachable for that reason.
	s := newSameID(t, timings{250 * time.Millisecond, 500 * time.Millisecond})
	a := s.start()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: s.srv.Addr})
	defer rdb.Close()
	claim := a.prefix + "claim:n1"
	if err := rdb.Set(ctx, claim, "another broker", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, "a's presence expires", func() bool {
		nodes, err := rdb.ZRangeWithScores(ctx, a.prefix+"nodes", 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		now, err := rdb.Time(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return !slices.ContainsFunc(nodes, func(z goredis.Z) bool { return int64(z.Score) > now.UnixMilli() })
	})
	if got := rdb.Get(ctx, claim).Val(); got != "another broker" {
		t.Errorf("claim of n1 is %q, want the other broker's", got)
	}
	if n := a.Metrics().Unreachable.Load(); n != 0 {
		t.Errorf("redis taken for unreachable %d times, want 0", n)
	}
	// Closing a leaves the other's claim alone.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rdb.Get(ctx, claim).Val(); got != "another broker" {
		t.Errorf("after a closed, the claim of n1 is %q, want the other broker's", got)
	}
}

// A broker whose start failed after Redis ran its heartbeat (the reply
// came too late) releases the node id it claimed there: a broker started
// again with it right after is not refused (it would be until the claim
// expired, PresenceTTL later).
func TestStartFailedLateLeavesTheNodeIDFree(t *testing.T) {
	s := newSameID(t, timings{time.Second, time.Minute})
	rdb := goredis.NewClient(&goredis.Options{Addr: s.srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	// Loaded, so that each script is one EVALSHA, run at once.
	for _, sc := range []*goredis.Script{heartbeatScript, leaveScript} {
		if err := sc.Load(ctx, rdb).Err(); err != nil {
			t.Fatal(err)
		}
	}
	proxy := startCutProxy(t, s.srv.Addr, "EVAL", false)
	cfg, err := ParseURL("redis://" + proxy.addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	s.set(&cfg)
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if b, err := New(short, cfg); err == nil {
		b.Close()
		t.Fatal("a broker started with its heartbeat's reply lost")
	}
	if proxy.lost.Load() == 0 {
		t.Fatal("the heartbeat's reply was not lost: the test did not run its case")
	}
	if _, err := tryBroker(t, s.srv, s.set); err != nil {
		t.Fatalf("a broker started right after a failed start with the same id: %v; want it started", err)
	}
}

// A broker whose id another broker claimed while it was cut off from Redis
// (taken for dead, an orchestrator started a replacement) is fenced off:
// it records no new connections, and publishes and appends nothing under
// the other's id, which would take those events for its own; Fenced says
// so. When the other closes, it claims its id again, and registers its
// presence again: the cluster, told its users left, is told they are back.
func TestBrokerWhoseIDIsClaimedElsewhereIsFencedOff(t *testing.T) {
	s := newSameID(t, steady)
	a := s.start()
	seen := &events{}
	a.SetHandler(seen.handle)
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
	defer cancel()
	alice := hub.PresenceRecord{ID: "a1", User: "alice", Name: "Alice"}
	if _, _, err := a.AddConn(ctx, alice); err != nil {
		t.Fatal(err)
	}
	twin := s.twinOf(a)

	bob := hub.PresenceRecord{ID: "b1", User: "bob", Name: "Bob"}
	if _, _, err := a.AddConn(ctx, bob); !errors.Is(err, ErrNodeIDTaken) {
		t.Errorf("a fenced-off broker records a connection: %v; want ErrNodeIDTaken", err)
	}
	if _, err := a.AddMember(ctx, "lounge", alice); !errors.Is(err, ErrNodeIDTaken) {
		t.Errorf("a fenced-off broker records a membership: %v; want ErrNodeIDTaken", err)
	}
	ev := &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: "hi"}
	if err := a.Publish(ctx, "lobby", ev); !errors.Is(err, ErrNodeIDTaken) {
		t.Errorf("a fenced-off broker publishes: %v; want ErrNodeIDTaken", err)
	}
	if _, err := a.Append(ctx, "room:x", ev, hub.AppendOptions{Log: hub.LogLimits{Size: 10}}); !errors.Is(err, ErrNodeIDTaken) {
		t.Errorf("a fenced-off broker appends: %v; want ErrNodeIDTaken", err)
	}
	snap, err := twin.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 0 {
		t.Errorf("users %v while a is fenced off, want none", snap.Users)
	}
	if n := a.Metrics().Fenced.Load(); n != 1 {
		t.Errorf("fenced %d times, want 1", n)
	}

	if err := a.Subscribe(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if err := twin.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, "a claims its id again", func() bool { return !a.Fenced() })
	eventually(t, waitTimeout, "alice back, and told so", func() bool {
		s, err := a.Snapshot(ctx)
		return err == nil && slices.Equal(s.Users, []string{"alice"}) && seen.has("lobby user_joined alice")
	})
	if _, _, err := a.AddConn(ctx, bob); err != nil {
		t.Errorf("a broker that claimed its id again records a connection: %v", err)
	}
}

// A broker that claims its id back from a twin that died with it removes
// the twin's presence and registers its own again in one heartbeat. A
// user with a connection on each (carol) stays in the chat throughout:
// the lobby is not told she left while she is listed. Before, it was told
// she joined (her connection here registered again), then that she left
// (her connection on the twin removed), and the lobby showed her gone.
func TestClaimBackDoesNotTellAUserLeftWhoStays(t *testing.T) {
	s := newSameID(t, steady)
	a := s.start()
	a.SetHandler(func(string, *hub.Event) {})
	seen := &events{}
	watcher := startBroker(t, s.srv, func(cfg *Config) { s.set(cfg); cfg.NodeID = "watcher" })
	watcher.SetHandler(seen.handle)
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
	defer cancel()
	if err := watcher.Subscribe(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.AddConn(ctx, hub.PresenceRecord{ID: "a-carol", User: "carol", Name: "Carol"}); err != nil {
		t.Fatal(err)
	}
	// a was cut off; a twin starts with its id, takes carol's connection
	// for a dead broker's, and carol opens another tab on the twin.
	twin := s.twinOf(a)
	// As the hub does, the twin tells the lobby of her first connection.
	if first, _, err := twin.AddConn(ctx, hub.PresenceRecord{ID: "twin-carol", User: "carol", Name: "Carol"}); err != nil || !first {
		t.Fatalf("carol's tab on the twin: first %v, %v; want her first connection", first, err)
	}
	if err := twin.Publish(ctx, "lobby", &hub.Event{Kind: hub.KindUserJoined, Time: time.Now(), UserID: "carol"}); err != nil {
		t.Fatal(err)
	}
	crash(twin)
	eventually(t, waitTimeout, "a claims its id back", func() bool { return !a.Fenced() })
	// The heartbeat that claimed it has told the lobby all it tells once
	// the next one has renewed a's presence; a marker published after
	// that comes behind what it told.
	rdb := goredis.NewClient(&goredis.Options{Addr: s.srv.Addr})
	defer rdb.Close()
	deadline := func() float64 { return rdb.ZScore(ctx, a.prefix+"nodes", "n1").Val() }
	renewed := deadline()
	eventually(t, waitTimeout, "another heartbeat", func() bool { return deadline() > renewed })
	if err := a.Publish(ctx, "lobby", &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: "marker"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, "the marker", func() bool { return seen.has("lobby message marker") })

	snap, err := a.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(snap.Users, []string{"carol"}) {
		t.Fatalf("users %v, want carol", snap.Users)
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	var told []string
	for _, e := range seen.list {
		if strings.HasSuffix(e, " carol") {
			told = append(told, e)
		}
	}
	if len(told) == 0 || strings.Contains(told[len(told)-1], "user_left") {
		t.Errorf("the lobby was told %q of carol, listed in the chat; want her last news not her leaving", told)
	}
}
