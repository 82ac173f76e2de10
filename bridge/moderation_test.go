package bridge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
)

// A session an administrator ends closes with 4003 and the reason, and a
// banned user's next connection is closed with 4003 "banned…" before any
// welcome, whether the bridge runs in the node or over gRPC.
func TestModeratedSessionsClose4003(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg := start(t, m, node.Config{}, bridge.Config{})
		h := tg.node.Node.Hub()
		ctx := context.Background()

		u := login(t, tg, "alice")
		if _, err := h.DisconnectUser(ctx, "alice", "cool off"); err != nil {
			t.Fatal(err)
		}
		if code, reason := u.closed(); code != bridge.CloseModerated || reason != "cool off" {
			t.Errorf("disconnected: close %d %q, want 4003 \"cool off\"", code, reason)
		}

		if _, err := h.Ban(ctx, hub.Ban{User: "alice", Reason: "spam", Until: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		v, err := dialRaw(t, tg, authPath(t, tg, "alice"), dialOpts{})
		if err != nil {
			t.Fatal(err)
		}
		v.name = "alice again"
		if code, reason := v.closed(); code != bridge.CloseModerated || !strings.HasPrefix(reason, "banned") || !strings.HasSuffix(reason, "spam") {
			t.Errorf("banned connect: close %d %q, want 4003 \"banned …: spam\"", code, reason)
		}
	})
}
