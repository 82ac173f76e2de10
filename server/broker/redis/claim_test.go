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
