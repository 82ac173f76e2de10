package brokertest

import (
	"slices"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// A ban recorded on one node holds on every node: a server ban keeps the
// user out of every room, a room ban out of that room only; bans are
// listed, lifted once, and lapse on their own.
func testBans(t *testing.T, nodes []*node) {
	c := ctx(t)
	a, b := at(nodes, 0), at(nodes, 1)
	until := time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()
	server := hub.Ban{User: "bob", Reason: "spam", Until: until}
	room := hub.Ban{User: "carol", Room: "team:eng", Reason: "off topic", Until: until}
	must(t, a.AddBan(c, server))
	must(t, a.AddBan(c, room))

	for _, tc := range []struct {
		user, room string
		want       *hub.Ban
	}{
		{"bob", "", &server},
		{"bob", "lounge", &server},
		{"carol", "", nil},
		{"carol", "team:eng", &room},
		{"carol", "lounge", nil},
		{"dave", "team:eng", nil},
	} {
		got, ok, err := b.Banned(c, tc.user, tc.room)
		must(t, err)
		switch {
		case tc.want == nil && ok:
			t.Errorf("Banned(%s, %q) = %+v, want no ban", tc.user, tc.room, got)
		case tc.want != nil && (!ok || !sameBan(got, *tc.want)):
			t.Errorf("Banned(%s, %q) = %+v, %v; want %+v", tc.user, tc.room, got, ok, *tc.want)
		}
	}

	list, err := b.ListBans(c)
	must(t, err)
	if len(list) != 2 || !slices.ContainsFunc(list, func(b hub.Ban) bool { return sameBan(b, server) }) ||
		!slices.ContainsFunc(list, func(b hub.Ban) bool { return sameBan(b, room) }) {
		t.Errorf("ListBans = %+v, want bob's and carol's", list)
	}

	got, ok, err := b.RemoveBan(c, "carol", "team:eng")
	must(t, err)
	if !ok || !sameBan(got, room) {
		t.Errorf("RemoveBan(carol, team:eng) = %+v, %v; want the room ban", got, ok)
	}
	if _, ok, _ := a.RemoveBan(c, "carol", "team:eng"); ok {
		t.Error("second RemoveBan(carol, team:eng) found a ban, want none")
	}
	if _, ok, _ := a.Banned(c, "carol", "team:eng"); ok {
		t.Error("carol still banned from team:eng after the ban was lifted")
	}

	short := hub.Ban{User: "erin", Until: time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond).UTC()}
	must(t, a.AddBan(c, short))
	if _, ok, _ := b.Banned(c, "erin", ""); !ok {
		t.Fatal("erin not banned right after the ban")
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		_, ok, err := b.Banned(c, "erin", "")
		must(t, err)
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("erin's 300ms ban still in force after %v", waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	list, err = a.ListBans(c)
	must(t, err)
	if slices.ContainsFunc(list, func(x hub.Ban) bool { return x.User == "erin" }) {
		t.Errorf("ListBans = %+v after erin's ban lapsed, want it gone", list)
	}
}

func sameBan(x, y hub.Ban) bool {
	return x.User == y.User && x.Room == y.Room && x.Reason == y.Reason && x.Until.Equal(y.Until)
}
