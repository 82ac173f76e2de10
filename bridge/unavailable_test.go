package bridge_test

import (
	"github.com/tertulia/tertulia/server/logs/logstest"

	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tertulia/tertulia/bridge"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
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
// not start session", where in-process said "service restart".) The core
// warns of the failure with why, which the browser's reason leaves out;
// the bridge does not repeat it.
func TestOpenWithoutTheClusterCloses1012(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		rs := redistest.Start(t)
		b := nodetest.RedisBroker(t, rs.URL(), func(c *redis.Config) { c.CallTimeout = 200 * time.Millisecond })
		var logs logstest.Buffer
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
		u.conn.Close()
		if logs.Await(waitTimeout, "level=WARN", "open session for alice") == "" {
			t.Errorf("want a warning of the failed open, with why; logs:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), `msg="websocket closed"`) {
			t.Errorf("the bridge warns of the close too; logs:\n%s", logs.String())
		}
	})
}

// A remote bridge that cannot reach its core warns of it, with why, and
// closes the browser with 1012 "service restart".
func TestUnreachableCoreIsWarnedOf(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() }) // after the bridge's shutdown
	var logs logstest.Buffer
	tg := serve(t, bridge.Config{
		Upstream: bridge.Remote{Client: chatv1.NewChatServiceClient(cc)},
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	u, err := dialRaw(t, tg, "/api/v1/ws/authenticated?token=any", dialOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if code, reason := u.closed(); code != bridge.StatusServiceRestart || reason != bridge.ReasonServiceRestart {
		t.Errorf("core out of reach: close %d %q, want %d %q", code, reason, bridge.StatusServiceRestart, bridge.ReasonServiceRestart)
	}
	u.conn.Close()
	if logs.Await(waitTimeout, "level=WARN", "core unreachable", addr) == "" {
		t.Errorf("want a warning that names the core's address; logs:\n%s", logs.String())
	}
}
