// Package brokertest is the conformance suite every hub.Broker passes: the
// embedded memory broker and the Redis broker run the same tests.
//
// A Cluster function returns fresh brokers that form one cluster, one per
// node. The memory broker is a cluster of one; the tests then play every
// node's part with it, so each test states what holds for any cluster size.
package brokertest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// Cluster returns the brokers of a new, empty cluster, at least one. It
// arranges for them to be closed when t ends.
type Cluster func(t *testing.T) []hub.Broker

// waitTimeout bounds every wait for an event.
const waitTimeout = 5 * time.Second

// Run runs the conformance suite against the clusters newCluster makes.
func Run(t *testing.T, newCluster Cluster) {
	tests := []struct {
		name string
		fn   func(*testing.T, []*node)
	}{
		{"DeliversToSubscribedNodesOnly", testDelivers},
		{"EventSurvivesTheTrip", testRoundTrip},
		{"SubscribeIsInEffectOnReturn", testSubscribeInEffect},
		{"SubscriptionsAreCounted", testCounted},
		{"PublisherHasItsOwnOnReturn", testOwnOnReturn},
		{"OneOrderPerTopic", testOrder},
		{"PresenceCounts", testPresence},
		{"FirstAndLastAreDecidedOnce", testFirstLast},
		{"MembersPageByUserID", testMembersPages},
		{"MembersFollowJoinsAndEnds", testMembersFollow},
		{"LogNumbersWithoutGaps", testLogGapFree},
		{"LogIsBounded", testLogBounded},
		{"LogIsShared", testLogShared},
		{"AppendDedups", testAppendDedup},
		{"AppendDedupsAtOnce", testAppendDedupAtOnce},
		{"UnloggedAppend", testUnlogged},
		{"BansHoldOnEveryNodeAndLapse", testBans},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bs := newCluster(t)
			if len(bs) == 0 {
				t.Fatal("cluster has no broker")
			}
			nodes := make([]*node, len(bs))
			for i, b := range bs {
				nodes[i] = &node{Broker: b, rec: newRecorder(t)}
				b.SetHandler(nodes[i].rec.handle)
			}
			tc.fn(t, nodes)
		})
	}
}

// node is one broker with the events its handler received.
type node struct {
	hub.Broker
	rec *recorder
}

// at returns node i of the cluster, wrapping around: in a cluster of one,
// every node is the same.
func at(nodes []*node, i int) *node { return nodes[i%len(nodes)] }

// recorder is a handler that keeps what it is given and checks that one
// topic is never handled by two goroutines at once.
type recorder struct {
	t      *testing.T
	mu     sync.Mutex // protects events, busy
	events map[string][]*hub.Event
	busy   map[string]bool
	bumped chan struct{} // signalled after each event
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, events: make(map[string][]*hub.Event), busy: make(map[string]bool), bumped: make(chan struct{}, 1)}
}

func (r *recorder) handle(topic string, ev *hub.Event) {
	r.mu.Lock()
	if r.busy[topic] {
		r.t.Errorf("topic %s handled by two goroutines at once, want one at a time", topic)
	}
	r.busy[topic] = true
	r.mu.Unlock()
	time.Sleep(time.Microsecond) // widen the window a concurrent call would need
	r.mu.Lock()
	r.busy[topic] = false
	r.events[topic] = append(r.events[topic], ev)
	r.mu.Unlock()
	select {
	case r.bumped <- struct{}{}:
	default:
	}
}

// got returns a copy of topic's events so far.
func (r *recorder) got(topic string) []*hub.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events[topic])
}

// wait returns topic's events once there are at least n.
func (r *recorder) wait(topic string, n int) []*hub.Event {
	r.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if evs := r.got(topic); len(evs) >= n {
			return evs
		}
		select {
		case <-r.bumped:
		case <-deadline:
			r.t.Fatalf("topic %s: got %d events within %v, want %d", topic, len(r.got(topic)), waitTimeout, n)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

func msg(text string) *hub.Event {
	return &hub.Event{Kind: hub.KindMessage, Time: time.Now().UTC(), Message: text, Sender: "alice", UserID: "alice"}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func texts(evs []*hub.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Message
	}
	return out
}

func testDelivers(t *testing.T, nodes []*node) {
	c := ctx(t)
	for i := range nodes {
		must(t, nodes[i].Subscribe(c, "room:a"))
	}
	b := at(nodes, 1)
	must(t, b.Subscribe(c, "room:marker"))

	pub := at(nodes, 0)
	must(t, pub.Publish(c, "room:b", msg("nobody listens")))
	must(t, pub.Publish(c, "room:a", msg("hello")))
	must(t, pub.Publish(c, "room:marker", msg("marker")))
	for i, n := range nodes {
		if got := texts(n.rec.wait("room:a", 1)); !slices.Equal(got, []string{"hello"}) {
			t.Errorf("node %d room:a: got %q, want [hello]", i, got)
		}
	}
	// Redis delivers one publisher's events in order across topics, and the
	// memory broker synchronously, so once the marker is in, room:b would be.
	b.rec.wait("room:marker", 1)
	for i, n := range nodes {
		if got := n.rec.got("room:b"); len(got) != 0 {
			t.Errorf("node %d: got %d events on room:b, which no node subscribed to, want 0", i, len(got))
		}
	}
}

func testRoundTrip(t *testing.T, nodes []*node) {
	c := ctx(t)
	recv := at(nodes, 1)
	must(t, recv.Subscribe(c, "user:bob"))
	want := hub.Event{Kind: hub.KindPrivateSent, Time: time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC),
		ID: "id-1", Message: "¡hola, 世界! \"quoted\" <b>", Room: "lounge", Sender: "Alice", UserID: "alice",
		ConnectionID: "c1", TargetUser: "bob", Delivered: 3, Code: "some_code",
		Offset: 7, Epoch: "e1", Recovered: hub.NotRecovered, Kicked: true}
	ev := want
	must(t, at(nodes, 0).Publish(c, "user:bob", &ev))
	got := *recv.rec.wait("user:bob", 1)[0]
	if !got.Time.Equal(want.Time) {
		t.Errorf("time: got %v, want %v", got.Time, want.Time)
	}
	got.Time = want.Time
	if got != want {
		t.Errorf("event: got %+v, want %+v", got, want)
	}
}

func testSubscribeInEffect(t *testing.T, nodes []*node) {
	c := ctx(t)
	sub, pub := at(nodes, 1), at(nodes, 0)
	for i := range 20 {
		topic := fmt.Sprintf("room:r%d", i)
		must(t, sub.Subscribe(c, topic))
		must(t, pub.Publish(c, topic, msg(topic)))
		if got := texts(sub.rec.wait(topic, 1)); got[0] != topic {
			t.Errorf("%s: got %q, want [%s]", topic, got, topic)
		}
	}
}

// A node subscribed to a topic has handled its own event by the time
// Publish returns: a session that publishes, then leaves, has seen it.
func testOwnOnReturn(t *testing.T, nodes []*node) {
	c := ctx(t)
	for _, n := range nodes {
		must(t, n.Subscribe(c, "room:echo"))
	}
	for i := range 20 {
		n := at(nodes, i)
		text := fmt.Sprintf("own %d", i)
		must(t, n.Publish(c, "room:echo", msg(text)))
		if got := texts(n.rec.got("room:echo")); !slices.Contains(got, text) {
			t.Fatalf("node %d after Publish returned: got %q, want %q among them", i%len(nodes), got, text)
		}
	}
}

func testCounted(t *testing.T, nodes []*node) {
	c := ctx(t)
	sub, pub := at(nodes, 1), at(nodes, 0)
	must(t, sub.Unsubscribe(c, "room:never")) // unknown topic: nothing to do
	must(t, sub.Subscribe(c, "room:x"))
	must(t, sub.Subscribe(c, "room:x"))
	must(t, sub.Subscribe(c, "room:marker"))
	must(t, sub.Unsubscribe(c, "room:x"))
	must(t, pub.Publish(c, "room:x", msg("one")))
	sub.rec.wait("room:x", 1)

	must(t, sub.Unsubscribe(c, "room:x"))
	must(t, pub.Publish(c, "room:x", msg("two")))
	must(t, pub.Publish(c, "room:marker", msg("marker")))
	sub.rec.wait("room:marker", 1)
	if got := texts(sub.rec.got("room:x")); !slices.Equal(got, []string{"one"}) {
		t.Errorf("room:x after the last unsubscribe: got %q, want [one]", got)
	}
}

func testOrder(t *testing.T, nodes []*node) {
	c := ctx(t)
	const topic, per = "room:busy", 100
	for _, n := range nodes {
		must(t, n.Subscribe(c, topic))
	}
	publishers := max(len(nodes), 2)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for p := range publishers {
		wg.Go(func() {
			for i := range per {
				if err := at(nodes, p).Publish(c, topic, msg(fmt.Sprintf("%d/%03d", p, i))); err != nil {
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		t.Fatal("publish failed")
	}
	total := publishers * per
	first := texts(nodes[0].rec.wait(topic, total))
	for i, n := range nodes {
		got := texts(n.rec.wait(topic, total))
		if len(got) != total {
			t.Errorf("node %d: got %d events, want %d", i, len(got), total)
		}
		if !slices.Equal(got, first) {
			t.Errorf("node %d saw another order than node 0:\n got %q\nwant %q", i, got, first)
		}
		// Each publisher's events keep the order it published them in.
		next := make(map[string]string)
		for _, m := range got {
			p, seq := m[:1], m[2:]
			if prev := next[p]; seq < prev {
				t.Errorf("node %d: publisher %s's %s came after %s, want in order", i, p, seq, prev)
			}
			next[p] = seq
		}
	}
}

func conn(id, user string) hub.PresenceRecord {
	return hub.PresenceRecord{ID: id, User: user, Name: "Name of " + user}
}

func testPresence(t *testing.T, nodes []*node) {
	c := ctx(t)
	a, b := at(nodes, 0), at(nodes, 1)
	a1, a2, b1 := conn("a1", "alice"), conn("a2", "alice"), conn("b1", "bob")
	member := func(n int, err error) (bool, int, error) { return false, n, err }
	steps := []struct {
		name  string
		do    func() (bool, int, error)
		want  bool
		count int // the count the change reports
		conns int
		users []string
		rooms map[string]int
	}{
		{"alice's first connection", func() (bool, int, error) { return a.AddConn(c, a1) }, true, 1, 1, []string{"alice"}, nil},
		{"alice's second, elsewhere", func() (bool, int, error) { return b.AddConn(c, a2) }, false, 2, 2, []string{"alice"}, nil},
		{"the same connection again", func() (bool, int, error) { return a.AddConn(c, a1) }, false, 2, 2, []string{"alice"}, nil},
		{"bob's first", func() (bool, int, error) { return b.AddConn(c, b1) }, true, 3, 3, []string{"alice", "bob"}, nil},
		{"alice joins lounge", func() (bool, int, error) { return member(a.AddMember(c, "lounge", a1)) }, false, 1, 3, []string{"alice", "bob"}, map[string]int{"lounge": 1}},
		{"and joins again", func() (bool, int, error) { return member(a.AddMember(c, "lounge", a1)) }, false, 1, 3, []string{"alice", "bob"}, map[string]int{"lounge": 1}},
		{"bob joins lounge", func() (bool, int, error) { return member(b.AddMember(c, "lounge", b1)) }, false, 2, 3, []string{"alice", "bob"}, map[string]int{"lounge": 2}},
		{"and den", func() (bool, int, error) { return member(b.AddMember(c, "den", b1)) }, false, 1, 3, []string{"alice", "bob"}, map[string]int{"lounge": 2, "den": 1}},
		{"bob leaves den", func() (bool, int, error) { return member(b.RemoveMember(c, "den", b1)) }, false, 1, 3, []string{"alice", "bob"}, map[string]int{"lounge": 2}},
		{"bob leaves den again", func() (bool, int, error) { return member(b.RemoveMember(c, "den", b1)) }, false, 0, 3, []string{"alice", "bob"}, map[string]int{"lounge": 2}},
		{"alice's first goes, her rooms with it", func() (bool, int, error) { return a.RemoveConn(c, a1) }, false, 3, 2, []string{"alice", "bob"}, map[string]int{"lounge": 1}},
		{"alice's last goes", func() (bool, int, error) { return b.RemoveConn(c, a2) }, true, 2, 1, []string{"bob"}, map[string]int{"lounge": 1}},
		{"an unknown connection goes", func() (bool, int, error) { return b.RemoveConn(c, a2) }, false, 1, 1, []string{"bob"}, map[string]int{"lounge": 1}},
		{"bob's last goes", func() (bool, int, error) { return a.RemoveConn(c, b1) }, true, 1, 0, nil, nil},
	}
	for _, s := range steps {
		got, count, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.want || count != s.count {
			t.Errorf("%s: got first/last %v, count %d; want %v, %d", s.name, got, count, s.want, s.count)
		}
		for i, n := range nodes {
			snap, err := n.Snapshot(c)
			if err != nil {
				t.Fatalf("%s: node %d snapshot: %v", s.name, i, err)
			}
			if snap.Connections != s.conns || !slices.Equal(snap.Users, s.users) || !sameRooms(snap.Rooms, s.rooms) {
				t.Errorf("%s: node %d: got %d conns, users %q, rooms %v; want %d, %q, %v",
					s.name, i, snap.Connections, snap.Users, snap.Rooms, s.conns, s.users, s.rooms)
			}
		}
	}
}

func sameRooms(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for r, n := range want {
		if got[r] != n {
			return false
		}
	}
	return true
}

func testFirstLast(t *testing.T, nodes []*node) {
	c := ctx(t)
	const conns = 24
	var firsts, lasts atomic.Int32
	run := func(op func(n *node, cn hub.PresenceRecord) (bool, error), count *atomic.Int32) {
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				ok, err := op(at(nodes, i), conn(fmt.Sprintf("c%d", i), "carol"))
				if err != nil {
					t.Errorf("connection %d: %v", i, err)
				}
				if ok {
					count.Add(1)
				}
			})
		}
		wg.Wait()
	}
	run(func(n *node, cn hub.PresenceRecord) (bool, error) {
		first, _, err := n.AddConn(c, cn)
		return first, err
	}, &firsts)
	if n, err := at(nodes, 1).UserConns(c, "carol"); err != nil || n != conns {
		t.Errorf("UserConns(carol) = %d, %v; want %d", n, err, conns)
	}
	run(func(n *node, cn hub.PresenceRecord) (bool, error) {
		last, _, err := n.RemoveConn(c, cn)
		return last, err
	}, &lasts)
	if firsts.Load() != 1 || lasts.Load() != 1 {
		t.Errorf("got %d firsts and %d lasts over %d connections, want 1 and 1", firsts.Load(), lasts.Load(), conns)
	}
	if n, err := at(nodes, 0).UserConns(c, "carol"); err != nil || n != 0 {
		t.Errorf("UserConns(carol) after all left = %d, %v; want 0", n, err)
	}
}
