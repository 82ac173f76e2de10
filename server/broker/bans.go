package broker

import (
	"slices"
	"strings"

	"github.com/tertulia/tertulia/server/hub"
)

// SortBans puts bans in the order hub.Bans.ListBans returns them in: by
// user, then by room (a server ban, room "", first).
func SortBans(bans []hub.Ban) {
	slices.SortFunc(bans, func(x, y hub.Ban) int {
		if c := strings.Compare(x.User, y.User); c != 0 {
			return c
		}
		return strings.Compare(x.Room, y.Room)
	})
}
