package bridge_test

import (
	"log/slog"
	"strings"
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
// not start session", where in-process said "service restart".) The
// bridge warns of the close with the session's error, which the browser's
// reason leaves out.
func TestOpenWithoutTheClusterCloses1012(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		rs := redistest.Start(t)
		b := nodetest.RedisBroker(t, rs.URL(), func(c *redis.Config) { c.CallTimeout = 200 * time.Millisecond })
		var logs logBuffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		tg := start(t, m, node.Config{Broker: b, Logger: log}, bridge.Config{Logger: log})
		rs.Stop(t)
		u, err := dialRaw(t, tg, authPath(t, tg, "alice"), dialOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if code, reason := u.closed(); code != bridge.StatusServiceRestart || reason != bridge.ReasonServiceRestart {
			t.Errorf("open while redis is down: close %d %q, want %d %q", code, reason, bridge.StatusServiceRestart, bridge.ReasonServiceRestart)
		}
		// The operator is told, with why: the browser's reason says nothing.
		deadline := time.Now().Add(waitTimeout)
		for !strings.Contains(logs.String(), `msg="websocket closed"`) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		var line string
		for l := range strings.Lines(logs.String()) {
			if strings.Contains(l, `msg="websocket closed"`) {
				line = l
			}
		}
		if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "code=1012") || !strings.Contains(line, "Unavailable") {
			t.Errorf("want a warning of the close with code=1012 and its error, Unavailable; logs:\n%s", logs.String())
		}
	})
}
