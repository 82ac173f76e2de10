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
		var got, want []string
		// keep reads alice's frames of room r until one matches last.
		keep := func(last string) {
			for {
				f := alice.next()
				var seen string
				switch {
				case f.str("room") != "r":
					continue
				case f.str("type") == "message":
					seen = "message " + f.str("message")
				case f.str("type") == "room_joined":
					seen = "room_joined " + f.str("user_id")
				}
				got = append(got, seen)
				if seen == last {
					return
				}
			}
		}
		for i := range joiners + 1 {
			if i == joiners/2 || i == joiners {
				// Alice's own copy is sent at once, with what was held
				// before it; waiting for it puts her message before the
				// next join.
				text := fmt.Sprintf("after %d joins", i)
				alice.sendJSON(map[string]string{"type": "message", "room": "r", "message": text})
				want = append(want, "message "+text)
				keep("message " + text)
			}
			user := fmt.Sprintf("j%d", i)
			login(t, tg, user).join("r")
			want = append(want, "room_joined "+user)
		}
		keep(want[len(want)-1]) // held until the sweeper's pass: no frame follows it
		if !slices.Equal(got, want) {
			t.Errorf("alice got\n%q\nwant\n%q", got, want)
		}
	})
}
