package node_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// A node whose Redis broker is fenced off (another broker claimed its node
// id while it was cut off from Redis, and it refuses every new session) is
// not ready: grpc.health.v1 says NOT_SERVING and /health answers 503
// {"status":"fenced"}, so that a load balancer sends nobody there. Once
// it claims its id back it serves again.
func TestFencedNodeIsNotReady(t *testing.T) {
	srv := redistest.Start(t)
	cfg := func(c *redis.Config) {
		c.Prefix, c.NodeID = "fenced", "n1"
		c.Heartbeat, c.PresenceTTL = 250*time.Millisecond, 2*time.Second
	}
	d := nodetest.StartOnRedis(t, srv.URL(), cfg)
	_, watch := watchHealth(t, d.GRPCAddr)
	web := &http.Client{Timeout: waitTimeout}
	if code, body := getHealth(t, web, d.URL("/health")); code != http.StatusOK {
		t.Fatalf("/health before the fence: %d %v, want 200", code, body)
	}

	// The node was cut off for longer than its TTL; its claim expired and
	// a broker started with its id.
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if err := rdb.Del(context.Background(), "fenced:claim:n1").Err(); err != nil {
		t.Fatal(err)
	}
	twin := nodetest.RedisBroker(t, srv.URL(), cfg)
	watch(healthpb.HealthCheckResponse_NOT_SERVING)
	if code, body := getHealth(t, web, d.URL("/health")); code != http.StatusServiceUnavailable || body["status"] != "fenced" {
		t.Errorf("/health while fenced: %d %v, want 503 {status: fenced}", code, body)
	}

	if err := twin.Close(); err != nil {
		t.Fatal(err)
	}
	watch(healthpb.HealthCheckResponse_SERVING)
	if code, body := getHealth(t, web, d.URL("/health")); code != http.StatusOK {
		t.Errorf("/health once the id is claimed back: %d %v, want 200", code, body)
	}
}
