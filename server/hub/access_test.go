package hub_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

func TestMatchRoom(t *testing.T) {
	for _, tc := range []struct {
		entry, room string
		want        bool
	}{
		{"team:eng", "team:eng", true},
		{"team:*", "team:eng", true},
		{"team:*", "teams:eng", false},
		{"team:*", "general", false},
		{"*", "general", true},
		{"team:e?g", "team:eng", true},
		{"team:[", "team:[", true},  // equal: no pattern needed
		{"team:[", "team:x", false}, // malformed: matches nothing
		{"", "general", false},
	} {
		if got := hub.MatchRoom(tc.entry, tc.room); got != tc.want {
			t.Errorf("MatchRoom(%q, %q) = %v, want %v", tc.entry, tc.room, got, tc.want)
		}
	}
}

func TestNamespacesDecide(t *testing.T) {
	ns, err := hub.NewNamespaces(map[string]hub.NamespacePolicy{
		"default": {Guests: false},
		"team":    {Private: true, Guests: true},
		"news":    {Publish: hub.PublishAdmins, Guests: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	member := hub.Identity{UserID: "m", Rooms: []string{"team:eng"}}
	pattern := hub.Identity{UserID: "p", Rooms: []string{"team:*"}}
	nobody := hub.Identity{UserID: "n"}
	guest := hub.Identity{UserID: "g", Guest: true}
	admin := hub.Identity{UserID: "a", Admin: true}
	for _, tc := range []struct {
		name    string
		who     hub.Identity
		room    string
		publish bool // ask MayPublish, else MayJoin
		ok      bool
	}{
		{"private, no claim", nobody, "team:eng", false, false},
		{"private, claim", member, "team:eng", false, true},
		{"private, claim for another room", member, "team:ops", false, false},
		{"private, pattern", pattern, "team:ops", false, true},
		{"private, admin", admin, "team:ops", false, true},
		{"private, guest", guest, "team:eng", false, false},
		{"default namespace, guest refused", guest, "general", false, false},
		{"default namespace, user", nobody, "general", false, true},
		{"news, guest joins", guest, "news:x", false, true},
		{"news, member publishes", member, "news:x", true, false},
		{"news, admin publishes", admin, "news:x", true, true},
		{"default, member publishes", nobody, "general", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err *hub.Error
			if tc.publish {
				err = ns.MayPublish(tc.who, tc.room)
			} else {
				err = ns.MayJoin(tc.who, tc.room)
			}
			if tc.ok && err != nil || !tc.ok && (err == nil || err.Code != hub.CodeForbidden) {
				t.Errorf("got %v, want ok %v (refusal code forbidden)", err, tc.ok)
			}
		})
	}
	var none *hub.Namespaces // no configuration: everything open
	if err := none.MayJoin(guest, "team:eng"); err != nil {
		t.Errorf("nil Namespaces refused a guest: %v", err)
	}
}

func TestNewNamespacesRefuses(t *testing.T) {
	for name, byName := range map[string]map[string]hub.NamespacePolicy{
		"both default names": {"": {}, "default": {}},
		"colon in a name":    {"a:b": {}},
		"bad publish":        {"x": {Publish: "everyone"}},
		"negative presence":  {"x": {PresenceLimit: -1}},
	} {
		if _, err := hub.NewNamespaces(byName); err == nil {
			t.Errorf("%s: NewNamespaces succeeded, want an error", name)
		}
	}
}

// The bans come listed by user, then by room (a server ban first), however
// they were made: an administrator reads the list, REST and gRPC alike.
func TestBansAreListedByUserThenRoom(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{}, memory.New())
	until := time.Now().Add(time.Hour)
	for _, b := range []hub.Ban{{User: "carol", Room: "lounge"}, {User: "bob", Room: "lounge"}, {User: "carol"}, {User: "alice", Room: "den"}} {
		b.Until = until
		if _, err := h.Ban(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	bans, err := h.Bans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bans {
		got = append(got, b.User+"/"+b.Room)
	}
	if want := []string{"alice/den", "bob/lounge", "carol/", "carol/lounge"}; !slices.Equal(got, want) {
		t.Errorf("bans listed as %q, want %q", got, want)
	}
}

// Namespace names are taken as room names are, in NFC: a name written
// decomposed is found, and two spellings of one name are refused.
func TestNamespaceNamesAreNFC(t *testing.T) {
	ns, err := hub.NewNamespaces(map[string]hub.NamespacePolicy{"cafe\u0301": {Private: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !ns.Policy("caf\u00e9:x").Private {
		t.Errorf("room caf\u00e9:x is not in the private namespace written decomposed")
	}
	for name, byName := range map[string]map[string]hub.NamespacePolicy{
		"two spellings of one name": {"cafe\u0301": {}, "caf\u00e9": {}},
		"a space at the end":        {"team ": {}},
		"a slash":                   {"a/b": {}},
	} {
		if _, err := hub.NewNamespaces(byName); err == nil {
			t.Errorf("%s: NewNamespaces succeeded, want an error", name)
		}
	}
}
