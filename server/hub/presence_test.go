package hub

import "testing"

func TestPresenceLimitFollowsTheNamespace(t *testing.T) {
	ns, err := NewNamespaces(map[string]NamespacePolicy{"team": {PresenceLimit: 20}, "big": {}})
	if err != nil {
		t.Fatal(err)
	}
	h := &Hub{cfg: Config{Namespaces: ns}.withDefaults()}
	for _, tc := range []struct {
		room string
		want int
	}{
		{"", DefaultPresenceLimit}, // the lobby
		{"lounge", DefaultPresenceLimit},
		{"team:eng", 20},
		{"team:", 20},
		{"teams:eng", DefaultPresenceLimit},
		{"big:hall", DefaultPresenceLimit}, // zero means the default
	} {
		if got := h.presenceLimit(tc.room); got != tc.want {
			t.Errorf("presenceLimit(%q) = %d, want %d", tc.room, got, tc.want)
		}
	}
}

func TestCursorRoundTrips(t *testing.T) {
	for _, id := range []string{"alice", "émile", "a b/c+d=", "guest-0123abcd"} {
		got, err := decodeCursor(encodeCursor(id))
		if err != nil || got != id {
			t.Errorf("decodeCursor(encodeCursor(%q)) = %q, %v", id, got, err)
		}
	}
	for _, bad := range []string{"!!", "a", "/w=="} {
		if _, err := decodeCursor(bad); err == nil || err.Code != "invalid_cursor" {
			t.Errorf("decodeCursor(%q) = %v, want invalid_cursor", bad, err)
		}
	}
}
