package load_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tertulia/tertulia/clients/load"
	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// With the publisher on one node and the subscribers on another, every
// message crosses Redis and still reaches every subscriber.
func TestFanoutAcrossTwoNodes(t *testing.T) {
	const conns = 20
	rs := redistest.Start(t)
	startNode := func() *nodetest.Server {
		return nodetest.StartOnRedis(t, rs.URL(), func(c *redis.Config) { c.Prefix = "loadtest" })
	}
	for _, transport := range load.Transports {
		t.Run(transport, func(t *testing.T) {
			// Fresh nodes: the last run's connections may still be leaving.
			subs, pubs := startNode(), startNode()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			pubBefore, subBefore := pubs.Node.Hub().Metrics().Published.Load(), subs.Node.Hub().Metrics().Published.Load()
			res, err := load.Run(ctx, load.Config{
				Scenario: "fanout", Transport: transport, Conns: conns, Rate: 400, Duration: 500 * time.Millisecond,
				HTTPAddr: subs.HTTPAddr, GRPCAddr: subs.GRPCAddr,
				PubHTTPAddr: pubs.HTTPAddr, PubGRPCAddr: pubs.GRPCAddr,
				JWTSecret: nodetest.Secret, ServerPID: os.Getpid(),
				Drain: drain,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Published == 0 || res.Delivered != res.Expected || res.Lost != 0 {
				t.Errorf("published %d, delivered %d of %d (%d lost), want all delivered", res.Published, res.Delivered, res.Expected, res.Lost)
			}
			// The messages entered the cluster on the publisher's node; the
			// subscribers' node published only its connections' comings and
			// goings (user_joined, room_joined, room_left, user_left).
			onPub := pubs.Node.Hub().Metrics().Published.Load() - pubBefore
			onSub := subs.Node.Hub().Metrics().Published.Load() - subBefore
			if onPub < res.Published || onSub > 4*conns {
				t.Errorf("events published: %d on the publisher's node, %d on the subscribers'; want the %d messages on the publisher's and at most %d on the subscribers'", onPub, onSub, res.Published, 4*conns)
			}
		})
	}
}
