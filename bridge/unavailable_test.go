package bridge_test

import (
	"testing"
	"time"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// A session the node cannot open because its cluster is out of reach is
// closed with 1012 "service restart" on both paths, as the browser is told
// after a restart: it comes back after a random wait. (In-process used to
// close with 1001 where the remote bridge, reading Connect's Unavailable,
// closed with 1012; then the remote bridge gave the status's text, "could
// not start session", where in-process said "service restart".)
func TestOpenWithoutTheClusterCloses1012(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		rs := redistest.Start(t)
		b := nodetest.RedisBroker(t, rs.URL(), func(c *redis.Config) { c.CallTimeout = 200 * time.Millisecond })
		tg := start(t, m, node.Config{Broker: b}, bridge.Config{})
		rs.Stop(t)
		u, err := dialRaw(t, tg, authPath(t, tg, "alice"), dialOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if code, reason := u.closed(); code != bridge.StatusServiceRestart || reason != bridge.ReasonServiceRestart {
			t.Errorf("open while redis is down: close %d %q, want %d %q", code, reason, bridge.StatusServiceRestart, bridge.ReasonServiceRestart)
		}
	})
}
