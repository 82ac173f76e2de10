package nodetest

import (
	"context"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/node"
)

// RedisBroker connects a broker to the Redis at url (a redistest.Server's
// URL), with edit applied to its config first, and closes it when the test
// ends: after the nodes started later, whose cleanups run first. An error
// of its Close is not the test's concern: tests stop their Redis on purpose.
func RedisBroker(t testing.TB, url string, edit ...func(*redis.Config)) *redis.Broker {
	t.Helper()
	cfg, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edit {
		e(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := redis.New(ctx, cfg)
	if err != nil {
		t.Fatalf("redis broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// StartOnRedis runs a node without rate limits (Unlimited) on a broker of
// its own connected to the Redis at url.
func StartOnRedis(t testing.TB, url string, edit ...func(*redis.Config)) *Server {
	t.Helper()
	return Start(t, node.Config{Broker: RedisBroker(t, url, edit...), Limits: Unlimited()})
}
