package brokertest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// logged bounds a test log to size messages.
func logged(size int) hub.AppendOptions {
	return hub.AppendOptions{Log: hub.LogLimits{Size: size, TTL: time.Hour}}
}

func offsets(evs []*hub.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Offset
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// Appends from every node at once are numbered 1, 2, 3… with no gap, one
// epoch, and every node receives them in offset order.
func testLogGapFree(t *testing.T, nodes []*node) {
	c := ctx(t)
	const topic, per = "room:log", 40
	for _, n := range nodes {
		must(t, n.Subscribe(c, topic))
	}
	publishers := max(len(nodes), 2)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range per {
				ev := msg(fmt.Sprintf("%d/%d", p, i))
				r, err := at(nodes, p).Append(c, topic, ev, logged(1000))
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if r.Offset == 0 || r.Epoch == "" || r.Duplicate {
					t.Errorf("append receipt %+v, want an offset and an epoch", r)
				}
			}
		})
	}
	wg.Wait()
	total := uint64(publishers * per)
	for i, n := range nodes {
		evs := n.rec.wait(topic, int(total))
		if got := offsets(evs); !slices.Equal(got, seq(1, total)) {
			t.Errorf("node %d received offsets %v, want 1..%d in order", i, got, total)
		}
		if evs[0].Epoch == "" || evs[len(evs)-1].Epoch != evs[0].Epoch {
			t.Errorf("node %d: epochs %q .. %q, want one non-empty epoch", i, evs[0].Epoch, evs[len(evs)-1].Epoch)
		}
	}
	page, err := at(nodes, 1).ReadLog(c, topic, hub.LogQuery{Limit: 1000, Limits: hub.LogLimits{Size: 1000}})
	must(t, err)
	if page.Offset != total || !slices.Equal(offsets(page.Events), seq(1, total)) {
		t.Errorf("ReadLog: position %d, offsets %v; want %d and 1..%d", page.Offset, offsets(page.Events), total, total)
	}
	got := nodes[0].rec.got(topic)
	for i, ev := range page.Events {
		if ev.Message != got[i].Message || ev.Epoch != got[i].Epoch {
			t.Errorf("logged event %d is %q in %q, delivered as %q in %q", ev.Offset, ev.Message, ev.Epoch, got[i].Message, got[i].Epoch)
		}
	}
}

// A log keeps only its latest Size messages and those younger than TTL.
func testLogBounded(t *testing.T, nodes []*node) {
	c := ctx(t)
	const topic = "room:small"
	lim := hub.LogLimits{Size: 5, TTL: time.Hour}
	for i := range 8 {
		ev := msg(fmt.Sprintf("m%d", i+1))
		if i < 2 {
			ev.Time = time.Now().Add(-2 * time.Hour) // too old, and beyond the size anyway
		}
		if i == 3 || i == 4 {
			ev.Time = time.Now().Add(-2 * time.Hour) // too old though within the size
		}
		_, err := at(nodes, i).Append(c, topic, ev, hub.AppendOptions{Log: lim})
		must(t, err)
	}
	for _, tc := range []struct {
		name string
		q    hub.LogQuery
		want []uint64
	}{
		{"everything kept", hub.LogQuery{Limit: 100}, []uint64{6, 7, 8}},
		{"after 6", hub.LogQuery{After: 6, Limit: 100}, []uint64{7, 8}},
		{"after 6, one", hub.LogQuery{After: 6, Limit: 1}, []uint64{7}},
		{"tail 2", hub.LogQuery{Tail: true, Limit: 2}, []uint64{7, 8}},
		{"tail 10", hub.LogQuery{Tail: true, Limit: 10}, []uint64{6, 7, 8}},
		{"position only", hub.LogQuery{After: 0}, nil},
		{"after the latest", hub.LogQuery{After: 8, Limit: 10}, nil},
	} {
		tc.q.Limits = lim
		page, err := at(nodes, 1).ReadLog(c, topic, tc.q)
		must(t, err)
		if page.Offset != 8 || page.Epoch == "" || !slices.Equal(offsets(page.Events), tc.want) {
			t.Errorf("%s: got position %d %q, offsets %v; want 8, an epoch, %v", tc.name, page.Offset, page.Epoch, offsets(page.Events), tc.want)
		}
	}
	page, err := at(nodes, 0).ReadLog(c, "room:never", hub.LogQuery{Limit: 10})
	must(t, err)
	if page.Offset != 0 || len(page.Events) != 0 {
		t.Errorf("a log never appended to: got offset %d and %d events, want 0 and none", page.Offset, len(page.Events))
	}
}

// Every node appends to and reads the same log.
func testLogShared(t *testing.T, nodes []*node) {
	c := ctx(t)
	const topic = "user:carol"
	var epochs []string
	for i := range 2 * len(nodes) {
		r, err := at(nodes, i).Append(c, topic, msg(fmt.Sprintf("p%d", i)), logged(10))
		must(t, err)
		if r.Offset != uint64(i+1) {
			t.Errorf("append %d on node %d: got offset %d, want %d", i, i%len(nodes), r.Offset, i+1)
		}
		epochs = append(epochs, r.Epoch)
	}
	if len(slices.Compact(slices.Clone(epochs))) != 1 {
		t.Errorf("got epochs %q, want one", epochs)
	}
	for i, n := range nodes {
		page, err := n.ReadLog(c, topic, hub.LogQuery{After: 1, Limit: 10, Limits: hub.LogLimits{Size: 10}})
		must(t, err)
		if page.Epoch != epochs[0] || len(page.Events) == 0 || page.Events[0].Message != "p1" {
			t.Errorf("node %d: got epoch %q, messages %q; want %q, from p1", i, page.Epoch, texts(page.Events), epochs[0])
		}
		if got := offsets(page.Events); !slices.Equal(got, seq(2, uint64(2*len(nodes)))) {
			t.Errorf("node %d: got offsets %v, want 2..%d", i, got, 2*len(nodes))
		}
	}
}

// An Append with the key of an earlier one, from any node, publishes nothing
// and reports the first one's position.
func testAppendDedup(t *testing.T, nodes []*node) {
	c := ctx(t)
	const topic = "room:dedup"
	sub := at(nodes, 1)
	must(t, sub.Subscribe(c, topic))
	opt := logged(10)
	opt.DedupKey, opt.DedupTTL = "alice/m1", time.Minute
	first, err := at(nodes, 0).Append(c, topic, msg("once"), opt)
	must(t, err)
	again, err := at(nodes, 1).Append(c, topic, msg("once"), opt)
	must(t, err)
	if first.Duplicate || !again.Duplicate || again.Position != first.Position {
		t.Errorf("got receipts %+v then %+v, want the same position, the second a duplicate", first, again)
	}
	opt.DedupKey = "alice/m2"
	other, err := at(nodes, 2).Append(c, topic, msg("twice"), opt)
	must(t, err)
	if other.Duplicate || other.Offset != first.Offset+1 {
		t.Errorf("another key: got %+v, want offset %d, not a duplicate", other, first.Offset+1)
	}
	if got := texts(sub.rec.wait(topic, 2)); !slices.Equal(got, []string{"once", "twice"}) {
		t.Errorf("delivered %q, want [once twice]", got)
	}
	page, err := sub.ReadLog(c, topic, hub.LogQuery{Limit: 10})
	must(t, err)
	if got := texts(page.Events); !slices.Equal(got, []string{"once", "twice"}) {
		t.Errorf("logged %q, want [once twice]", got)
	}
}

// Resends of one frame that arrive together, on every node at once, are
// logged and delivered once, and all answered with its position.
func testAppendDedupAtOnce(t *testing.T, nodes []*node) {
	c := ctx(t)
	const topic, sends = "room:dedup-at-once", 8
	sub := at(nodes, 1)
	must(t, sub.Subscribe(c, topic))
	for round := range 20 {
		opt := logged(100)
		opt.DedupKey, opt.DedupTTL = fmt.Sprintf("bob/m%d", round), time.Minute
		receipts := make([]hub.Receipt, sends)
		errs := make([]error, sends)
		var wg sync.WaitGroup
		for i := range sends {
			wg.Go(func() { receipts[i], errs[i] = at(nodes, i).Append(c, topic, msg(opt.DedupKey), opt) })
		}
		wg.Wait()
		firsts := 0
		for i, r := range receipts {
			must(t, errs[i])
			if !r.Duplicate {
				firsts++
			}
			if r.Position != receipts[0].Position {
				t.Fatalf("round %d: receipts %+v and %+v name different positions", round, receipts[0], r)
			}
		}
		if firsts != 1 {
			t.Fatalf("round %d: %d receipts not duplicates, want 1", round, firsts)
		}
	}
	// A last event: once it is in, everything before it is (one order
	// per topic), a late duplicate included.
	_, err := at(nodes, 0).Append(c, topic, msg("last"), logged(100))
	must(t, err)
	got := texts(sub.rec.wait(topic, 21))
	want := make([]string, 0, 21)
	for round := range 20 {
		want = append(want, fmt.Sprintf("bob/m%d", round))
	}
	if want = append(want, "last"); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want each round's event once, in order, then last", got)
	}
}

// An Append without a log publishes with no offset, and may be deduplicated.
func testUnlogged(t *testing.T, nodes []*node) {
	c := ctx(t)
	sub := at(nodes, 1)
	must(t, sub.Subscribe(c, "lobby"))
	opt := hub.AppendOptions{DedupKey: "bob/l1", DedupTTL: time.Minute}
	for range 2 {
		r, err := at(nodes, 0).Append(c, "lobby", msg("hi all"), opt)
		must(t, err)
		if r.Offset != 0 || r.Epoch != "" {
			t.Errorf("unlogged append: got %+v, want no position", r)
		}
	}
	must(t, at(nodes, 0).Publish(c, "lobby", msg("marker")))
	got := sub.rec.wait("lobby", 2)
	if !slices.Equal(texts(got), []string{"hi all", "marker"}) || got[0].Offset != 0 {
		t.Errorf("got %q (offset %d), want [hi all marker] with no offset", texts(got), got[0].Offset)
	}
}
