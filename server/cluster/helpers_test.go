package cluster_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// waitTimeout bounds every wait for a frame or a state.
const waitTimeout = 5 * time.Second

// Presence timings of clusters whose test watches a node expire: a crashed
// node's users are gone within testTTL + testHeartbeat.
const (
	testHeartbeat = 100 * time.Millisecond
	testTTL       = 400 * time.Millisecond
)

// Presence timings of every other cluster: a heartbeat late by less than a
// second, on a busy machine under -race, expires nobody.
const (
	steadyHeartbeat = 250 * time.Millisecond
	steadyTTL       = 2 * time.Second
)

var clusters atomic.Int64

// cluster is nodes sharing one redis-server under a prefix of their own.
type cluster struct {
	redis          *redistest.Server
	prefix         string
	heartbeat, ttl time.Duration
	callTimeout    time.Duration // the brokers' CallTimeout; 0: the default
	nodes          []*nodetest.Server
	brokers        []*redis.Broker
}

// startCluster starts a redis-server and n nodes on it.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	return startClusterTimed(t, n, steadyHeartbeat, steadyTTL)
}

// startClusterTimed is startCluster with the given presence timings.
func startClusterTimed(t testing.TB, n int, heartbeat, ttl time.Duration) *cluster {
	t.Helper()
	c := &cluster{redis: redistest.Start(t), prefix: fmt.Sprintf("c%d", clusters.Add(1)), heartbeat: heartbeat, ttl: ttl}
	for range n {
		c.addNode(t)
	}
	return c
}

// addNode starts one more node in the cluster.
func (c *cluster) addNode(t testing.TB) *nodetest.Server {
	t.Helper()
	return c.addNodeWith(t, node.Config{AllowAnonymous: true})
}

// addNodeWith starts one more node in the cluster, configured by cfg but
// for its broker.
func (c *cluster) addNodeWith(t testing.TB, cfg node.Config) *nodetest.Server {
	t.Helper()
	b := c.broker(t)
	cfg.Broker = b
	cfg.Limits = nodetest.Unlimited()
	srv := nodetest.Start(t, cfg)
	c.nodes = append(c.nodes, srv)
	c.brokers = append(c.brokers, b)
	return srv
}

// broker returns a new broker of the cluster, closed when the test ends
// (after the node using it, whose cleanup is registered later).
func (c *cluster) broker(t testing.TB) *redis.Broker {
	t.Helper()
	cfg, err := redis.ParseURL(c.redis.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Prefix, cfg.Heartbeat, cfg.PresenceTTL, cfg.CallTimeout = c.prefix, c.heartbeat, c.ttl, c.callTimeout
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	b, err := redis.New(ctx, cfg)
	if err != nil {
		t.Fatalf("redis broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return b
}

// user is one gRPC client session.
type user struct {
	t    testing.TB
	name string
	id   string // user id, from the welcome
	c    *client.Client
	s    *client.Session
}

// connect opens a session for name on srv, as an admin if asked, and waits
// for its welcome.
func connect(t testing.TB, srv *nodetest.Server, name string, admin bool) *user {
	t.Helper()
	return connectAddr(t, srv.GRPCAddr, srv.Token(t, name, admin), name)
}

// connectAddr opens a session with token on the node at grpcAddr.
func connectAddr(t testing.TB, grpcAddr, token, name string) *user {
	t.Helper()
	p := nodetest.Open(t, grpcAddr, token, name)
	return &user{t: t, name: name, id: p.Welcome.UserId, c: p.C, s: p.S}
}

// await skips frames until one satisfies match, and returns it.
func (u *user) await(what string, match func(*chatv1.ServerFrame) bool) *chatv1.ServerFrame {
	u.t.Helper()
	return nodetest.Await(u.t, u.name, u.s, what, match)
}

// poll returns the first frame satisfying match within d, if one comes.
func (u *user) poll(d time.Duration, match func(*chatv1.ServerFrame) bool) (*chatv1.ServerFrame, bool) {
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-u.s.Events():
			if !ok {
				return nil, false
			}
			if match(f) {
				return f, true
			}
		case <-deadline:
			return nil, false
		}
	}
}

// until returns the frames before the first one satisfying match, and that
// one last.
func (u *user) until(what string, match func(*chatv1.ServerFrame) bool) []*chatv1.ServerFrame {
	u.t.Helper()
	var seen []*chatv1.ServerFrame
	u.await(what, func(f *chatv1.ServerFrame) bool {
		seen = append(seen, f)
		return match(f)
	})
	return seen
}

func (u *user) must(err error) {
	u.t.Helper()
	if err != nil {
		u.t.Fatalf("%s: %v", u.name, err)
	}
}

// join joins room and waits for the session's own room_joined.
func (u *user) join(room string) {
	u.t.Helper()
	nodetest.Join(u.t, u.name, u.s, room, u.id)
}

func isMessage(text string) func(*chatv1.ServerFrame) bool {
	return func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil && f.GetMessage().Message == text }
}

// eventually polls cond every 20ms until it holds, and fails the test if it
// does not within d. It returns how long it took.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	if !within(d, cond) {
		t.Fatalf("%s: not within %v", what, d)
	}
	return time.Since(start)
}

// within reports whether cond holds within d, polling it.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
