package bridge_test

import (
	"github.com/tertulia/tertulia/server/logs/logstest"

	"log/slog"
	"strings"
	"testing"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node"
)

// Tokens never reach the logs, even at debug level: not from the URL, not
// from a subprotocol, not when refused.
func TestTokensAreNeverLogged(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		var logs logstest.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		tg := start(t, m, node.Config{Logger: log}, bridge.Config{Logger: log})

		good := tg.node.Token(t, "alice", false)
		alice := connect(t, tg, "alice", "/api/v1/ws/authenticated?token="+good, dialOpts{})
		alice.sendJSON(map[string]string{"message": "hello"})
		alice.await("own message", isMessage("hello"))

		viaProtocol := tg.node.Token(t, "bob", false)
		connect(t, tg, "bob", "/api/v1/ws/authenticated", dialOpts{protocols: []string{bridge.Subprotocol, "bearer." + viaProtocol}})

		bad := tokenFrom(t, auth.Config{Secret: []byte("some-other-secret-0123456789abcdef")}, "mallory")
		mallory, err := dialRaw(t, tg, "/api/v1/ws/authenticated?token="+bad, dialOpts{})
		if err == nil {
			mallory.name = "mallory"
			if code, _ := mallory.closed(); code != 1008 {
				t.Errorf("bad token: close %d, want 1008", code)
			}
		}
		alice.conn.Close()

		logs.Await(waitTimeout, "websocket closed")
		out := logs.String()
		if !strings.Contains(out, "websocket closed") {
			t.Fatalf("nothing logged at debug level, so the test proves nothing:\n%s", out)
		}
		for name, tok := range map[string]string{"URL": good, "subprotocol": viaProtocol, "refused": bad} {
			sig := tok[strings.LastIndex(tok, ".")+1:]
			if strings.Contains(out, sig) {
				t.Errorf("the %s token's signature is in the logs:\n%s", name, out)
			}
		}
	})
}
