package bridge_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/node"
)

// Joins announced to a member over a WebSocket, which the hub holds for
// the next frame that wakes the member's writer (or its bound), reach the
// member all, in order, in their places around a chat message sent
// between them; the last, which no frame follows, still comes.
func TestJoinAnnouncementsKeepTheirOrder(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		const joiners = 10
		tg := start(t, m, node.Config{}, bridge.Config{})
		alice := login(t, tg, "alice")
		alice.join("r")
		var want []string
		for i := range joiners + 1 {
			if i == joiners/2 || i == joiners {
				text := fmt.Sprintf("after %d joins", i)
				alice.sendJSON(map[string]string{"type": "message", "room": "r", "message": text})
				want = append(want, "message "+text)
			}
			user := fmt.Sprintf("j%d", i)
			login(t, tg, user).join("r")
			want = append(want, "room_joined "+user)
		}
		var got []string
		for len(got) < len(want) {
			f := alice.next()
			switch {
			case f.str("room") != "r":
			case f.str("type") == "message":
				got = append(got, "message "+f.str("message"))
			case f.str("type") == "room_joined":
				got = append(got, "room_joined "+f.str("user_id"))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("alice got\n%q\nwant\n%q", got, want)
		}
	})
}
