package web_test

import (
	"testing"

	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// TestPagesRideOutARedisPause runs outage_test.mjs against a node on a real
// redis-server that it pauses with SIGSTOP (PAUSE) and continues with
// SIGCONT (RESUME; the end of the test continues it too). Carol's rooms
// page, in Chromium, reaches the node through a proxy that can keep her
// away (CUT, then UP); bob's page reaches it directly.
//
//   - Carol joins tapas while Redis is paused and types two messages: her
//     join is refused for now, sent again after the page's backoff, refused
//     again; she leaves tapas. Her page shows each message failed with
//     "left room "tapas" before its join was accepted" (not_in_room), and
//     neither ever left the page. She joins copas and types a message: the
//     join is refused for now and goes again; she leaves copas before that
//     join's answer. The message fails the same way, never sent; the
//     leave_room goes, with an id, and its not_in_room is not shown.
//   - Bob sends carol two private messages while she is away. Her new
//     connection's recover_private reaches the node while Redis is paused
//     and is refused for now; once Redis is back the page sends it again, on
//     the same connection, and shows both messages, once each.
func TestPagesRideOutARedisPause(t *testing.T) {
	nodeBin := need(t)
	rs := redistest.Start(t)
	srv := startPagesNode(t, "127.0.0.1:0", nodetest.Unlimited(), nodetest.RedisBroker(t, rs.URL()))
	net := startProxy(t, srv.HTTPAddr)

	env := []string{"BASE_URL=http://" + net.addr(), "DIRECT_URL=http://" + srv.HTTPAddr, "PROFILE=" + t.TempDir(), "CHROMIUM=" + chromiumPath}
	runScript(t, nodeBin, "outage_test.mjs", env, func(line string) (string, bool) {
		switch line {
		case "PAUSE":
			rs.Pause(t)
		case "RESUME":
			rs.Resume(t)
		case "CUT":
			net.cut(true)
		case "UP":
			net.up()
		default:
			return "", false
		}
		return "DONE", true
	})
}
