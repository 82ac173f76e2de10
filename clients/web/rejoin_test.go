package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	web "github.com/tertulia/tertulia/clients/web"
	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// TestPagesWaitForTheirRoomsRejoin runs rejoin_test.mjs: alice (in tapas)
// and carol (in copas) each have a message refused for now (rate_limited)
// and still pending when their node stops. The next node, at the same
// address, refuses alice's join again for good (she was banned from tapas
// meanwhile) and carol's for now (its Redis is paused with SIGSTOP when her
// join reaches it: unavailable). Alice's page shows her message failed with
// the ban, never not_in_room, and her private message goes; carol's message
// reaches bob once, after her join is sent again and accepted. The pages
// reach the nodes through a proxy kept down while the node is replaced.
func TestPagesWaitForTheirRoomsRejoin(t *testing.T) {
	nodeBin := need(t)
	rs := redistest.Start(t)
	// The recover_private of a new page and one message per connection,
	// then rate_limited for good (no flood).
	first := startPagesNode(t, "127.0.0.1:0", node.Limits{Limits: hub.Limits{
		MessagesPerSecond: 0.001, MessagesBurst: 2, FloodTimeout: time.Hour,
		UserMessagesPerSecond: hub.Off, JoinsPerSecond: hub.Off, ConnsPerIP: hub.Off,
	}}, nil)
	net := startProxy(t, first.HTTPAddr)

	env := []string{"BASE_URL=http://" + net.addr(), "DIRECT_URL=http://" + first.HTTPAddr, "PROFILE=" + t.TempDir(), "CHROMIUM=" + chromiumPath}
	runScript(t, nodeBin, "rejoin_test.mjs", env, func(line string) (string, bool) {
		switch line {
		case "SWITCH":
			// The node stops with the pages cut off; the next one, on the
			// Redis, bans alice from tapas before they can reach it.
			net.cut(true)
			first.Stop(t)
			next := startPagesNode(t, first.HTTPAddr, nodetest.Unlimited(), nodetest.RedisBroker(t, rs.URL()))
			banFromRoom(t, next, "alice", "tapas")
		case "UP":
			net.up()
		case "PAUSE":
			rs.Pause(t)
		case "RESUME":
			rs.Resume(t)
		default:
			return "", false
		}
		return "DONE", true
	})
}

// startPagesNode starts a dev node serving the pages with limits, on
// broker (nil: memory), its HTTP port on httpAddr.
func startPagesNode(t *testing.T, httpAddr string, limits node.Limits, broker hub.Broker) *nodetest.Server {
	t.Helper()
	cfg := node.Config{Dev: true, Static: web.FS(), Limits: limits, Broker: broker, ShutdownSpread: 100 * time.Millisecond}
	return nodetest.StartOn(t, cfg, "127.0.0.1:0", httpAddr)
}

// banFromRoom bans user from room for an hour through srv's admin API.
func banFromRoom(t *testing.T, srv *nodetest.Server, user, room string) {
	t.Helper()
	body := `{"user":"` + user + `","room":"` + room + `","duration":"1h","reason":"spam"}`
	req, err := http.NewRequest(http.MethodPost, srv.URL("/api/v1/websocket/bans"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+srv.Token(t, "root", true))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("ban %s from %s: HTTP %d", user, room, res.StatusCode)
	}
}
