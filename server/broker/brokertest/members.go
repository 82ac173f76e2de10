package brokertest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/tertulia/tertulia/server/hub"
)

// members walks every page of room's members, limit at a time, from node n.
func members(t *testing.T, n *node, room string, limit int) (pages [][]hub.Member, total int) {
	t.Helper()
	after := ""
	for range 100 {
		ms, tot, err := n.Members(ctx(t), room, after, limit)
		if err != nil {
			t.Fatalf("Members(%q, %q, %d): %v", room, after, limit, err)
		}
		total = tot
		if len(ms) == 0 {
			return pages, total
		}
		if len(ms) > limit {
			t.Fatalf("Members(%q, %q, %d) gave %d members", room, after, limit, len(ms))
		}
		pages = append(pages, ms)
		after = ms[len(ms)-1].UserID
	}
	t.Fatalf("Members(%q) did not end within 100 pages", room)
	return nil, 0
}

func ids(pages [][]hub.Member) [][]string {
	out := make([][]string, len(pages))
	for i, p := range pages {
		for _, m := range p {
			out[i] = append(out[i], m.UserID)
		}
	}
	return out
}

func testMembersPages(t *testing.T, nodes []*node) {
	c := ctx(t)
	// Ids sort by their bytes: upper case before lower, accents after both.
	users := []string{"zoë", "bob", "Zed", "alice", "émile", "carol", "dave"}
	for i, u := range users {
		n := at(nodes, i)
		cn := conn(fmt.Sprintf("c%d", i), u)
		if _, _, err := n.AddConn(c, cn); err != nil {
			t.Fatal(err)
		}
		if _, err := n.AddMember(c, "lounge", cn); err != nil {
			t.Fatal(err)
		}
	}
	// carol's second connection, in the room too; eve is connected, elsewhere.
	carol2, eve := conn("c-carol-2", "carol"), conn("c-eve", "eve")
	for _, cn := range []hub.PresenceRecord{carol2, eve} {
		if _, _, err := at(nodes, 1).AddConn(c, cn); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := at(nodes, 1).AddMember(c, "lounge", carol2); err != nil {
		t.Fatal(err)
	}
	if _, err := at(nodes, 1).AddMember(c, "den", eve); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"Zed", "alice", "bob"}, {"carol", "dave", "zoë"}, {"émile"}}
	for i, n := range nodes {
		pages, total := members(t, n, "lounge", 3)
		if got := ids(pages); !slices.EqualFunc(got, want, slices.Equal) || total != 7 {
			t.Errorf("node %d: got pages %q of %d users, want %q of 7", i, got, total, want)
		}
		for _, p := range pages {
			for _, m := range p {
				wantConns := 1
				if m.UserID == "carol" {
					wantConns = 2
				}
				if m.Name != "Name of "+m.UserID || m.Connections != wantConns {
					t.Errorf("node %d: got member %+v, want name %q and %d connections", i, m, "Name of "+m.UserID, wantConns)
				}
			}
		}
	}
	if ms, total, err := at(nodes, 0).Members(c, "nowhere", "", 10); err != nil || len(ms) != 0 || total != 0 {
		t.Errorf("Members(nowhere) = %v, %d, %v; want none", ms, total, err)
	}
}

func testMembersFollow(t *testing.T, nodes []*node) {
	c := ctx(t)
	a, b := at(nodes, 0), at(nodes, 1)
	a1, a2, b1 := conn("a1", "alice"), conn("a2", "alice"), conn("b1", "bob")
	for _, step := range []struct {
		n  *node
		cn hub.PresenceRecord
	}{{a, a1}, {b, a2}, {b, b1}} {
		if _, _, err := step.n.AddConn(c, step.cn); err != nil {
			t.Fatal(err)
		}
		if _, err := step.n.AddMember(c, "lounge", step.cn); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string, want ...hub.Member) {
		t.Helper()
		for i, n := range nodes {
			ms, total, err := n.Members(c, "lounge", "", 10)
			if err != nil {
				t.Fatalf("%s: node %d: %v", when, i, err)
			}
			if !slices.Equal(ms, want) || total != len(want) {
				t.Errorf("%s: node %d: got %+v of %d, want %+v", when, i, ms, total, want)
			}
		}
	}
	alice := func(n int) hub.Member { return hub.Member{UserID: "alice", Name: "Name of alice", Connections: n} }
	bob := hub.Member{UserID: "bob", Name: "Name of bob", Connections: 1}
	check("all in", alice(2), bob)
	if _, err := b.RemoveMember(c, "lounge", a2); err != nil {
		t.Fatal(err)
	}
	check("alice's second left the room", alice(1), bob)
	if _, _, err := a.RemoveConn(c, a1); err != nil {
		t.Fatal(err)
	}
	check("alice's first ended", bob)
	if _, _, err := b.RemoveConn(c, b1); err != nil {
		t.Fatal(err)
	}
	check("everyone gone")
	if _, _, err := b.RemoveConn(c, a2); err != nil {
		t.Fatal(err)
	}
}
