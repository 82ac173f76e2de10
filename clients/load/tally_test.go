package load

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// deliver hands m the tool's message (pub, seq) as a reader would, read at
// now.
func deliver(m *member, pub uint32, seq uint64, now time.Time) {
	onMessage(m, stampPayload(make([]byte, 0, PayloadSize), now.Add(-time.Millisecond), pub, seq), now)
}

// A subscriber's messages are told apart by publisher and sequence number:
// a copy is extra, a gap is lost, and neither hides the other.
func TestTallyTellsCopiesFromLosses(t *testing.T) {
	type msg struct {
		pub uint32
		seq uint64
	}
	seqs := func(pub uint32, s ...uint64) []msg {
		var out []msg
		for _, n := range s {
			out = append(out, msg{pub, n})
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		msgs       []msg
		got, extra int64
	}{
		{"in order", seqs(0, 0, 1, 2, 3), 4, 0},
		{"a copy and a gap", seqs(0, 0, 1, 1, 3), 3, 1},
		{"a copy of the last", seqs(0, 0, 1, 2, 3, 3, 3), 4, 2},
		{"late, into its gap", seqs(0, 0, 2, 1, 3), 4, 0},
		{"late into a gap, then again", seqs(0, 0, 3, 1, 2, 1, 2), 4, 2},
		{"split gap filled from the middle", seqs(0, 0, 9, 5, 3, 7, 5), 5, 1},
		{"two publishers interleaved", append(seqs(7, 0, 1), append(seqs(3, 0), append(seqs(7, 2), seqs(3, 1, 1)...)...)...), 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMember(nil, "")
			for _, s := range tc.msgs {
				deliver(m, s.pub, s.seq, time.Now())
			}
			if got, extra := m.seen.got.Load(), m.seen.extra.Load(); got != tc.got || extra != tc.extra {
				t.Errorf("got %d distinct and %d extra, want %d and %d", got, extra, tc.got, tc.extra)
			}
		})
	}
}

// A connection that keeps losing messages keeps at most maxGaps gaps, and
// a message into a gap given up counts as extra, not as new.
func TestTallyGapsAreBounded(t *testing.T) {
	m := newMember(nil, "")
	for seq := uint64(0); seq < 10_000; seq += 2 { // every odd one lost
		deliver(m, 0, seq, time.Now())
	}
	if n := len(m.seen.one.gaps); n != maxGaps {
		t.Fatalf("got %d gaps remembered, want %d", n, maxGaps)
	}
	deliver(m, 0, 1, time.Now())     // long given up
	deliver(m, 0, 9_997, time.Now()) // still remembered
	if got, extra := m.seen.got.Load(), m.seen.extra.Load(); got != 5_001 || extra != 1 {
		t.Errorf("got %d distinct and %d extra, want 5001 and 1", got, extra)
	}
}

// testRunner is a runner over members fed by hand, each subscriber of one
// publisher's n messages.
func testRunner(drain time.Duration, subs ...*member) *runner {
	r := &runner{cfg: Config{Drain: drain, Warnings: io.Discard}, hist: new(Histogram)}
	for _, m := range subs {
		r.clients = append(r.clients, &client{m: m})
	}
	return r
}

func all4(n int64) expectFunc {
	return func([]int64) func(int) int64 { return func(int) int64 { return n } }
}

// Losses are counted subscriber by subscriber: one that got a message
// twice does not make up for one that never got another, though the
// deliveries add up to what was expected.
func TestDrainCountsEachSubscriber(t *testing.T) {
	now := time.Now()
	twice, missed := newMember(nil, ""), newMember(nil, "")
	for _, seq := range []uint64{0, 1, 1, 2, 3} {
		deliver(twice, 0, seq, now)
	}
	last := now.Add(time.Second)
	for _, seq := range []uint64{0, 1, 3} {
		deliver(missed, 0, seq, last)
	}
	r := testRunner(50*time.Millisecond, twice, missed)
	d := r.drain(context.Background(), 0, 2, all4(4))
	if d.expected != 8 || d.got != 7 || d.lost != 1 || d.extra != 1 {
		t.Errorf("got expected %d, distinct %d, lost %d, extra %d; want 8, 7, 1, 1", d.expected, d.got, d.lost, d.extra)
	}
	if !d.end.Equal(last) {
		t.Errorf("got the window ending at %v, want at the last delivery, %v", d.end, last)
	}

	// One subscriber alone: a copy and a loss are 1 and 1, not 0.
	one := newMember(nil, "")
	for _, seq := range []uint64{0, 1, 1, 3} {
		deliver(one, 0, seq, now)
	}
	d = testRunner(time.Millisecond, one).drain(context.Background(), 0, 1, all4(4))
	if d.lost != 1 || d.extra != 1 {
		t.Errorf("one subscriber: got lost %d, extra %d; want 1, 1", d.lost, d.extra)
	}
}

// When every message came, the window of delivered_per_s ends at the last
// delivery, at once, not at the end of the drain.
func TestDrainWindowEndsAtLastDelivery(t *testing.T) {
	start := time.Now()
	a, b := newMember(nil, ""), newMember(nil, "")
	last := start.Add(3 * time.Second)
	for seq := range uint64(4) {
		deliver(a, 0, seq, start.Add(time.Duration(seq)*time.Second))
		deliver(b, 0, seq, start.Add(time.Duration(seq)*time.Millisecond))
	}
	d := testRunner(time.Hour, a, b).drain(context.Background(), 0, 2, all4(4))
	if d.lost != 0 || d.extra != 0 || !d.end.Equal(last) {
		t.Errorf("got lost %d, extra %d, window end %v; want 0, 0, %v", d.lost, d.extra, d.end, last)
	}
	res := &Result{}
	testRunner(0).finish(res, publishing{sent: 4, start: start, took: 3 * time.Second, target: 4.0 / 3}, 1, d, startStats(0), startStats(0))
	if want := 8.0 / 3; res.DeliveredSec != want {
		t.Errorf("got %v delivered/s, want %v: 8 deliveries over the 3 s from the first publish to the last delivery", res.DeliveredSec, want)
	}
}

// A message lost does not stretch the window to the end of the wait: the
// rate is over the deliveries that came, and the loss is counted as lost.
func TestDrainWindowEndsAtLastDeliveryWithALoss(t *testing.T) {
	start := time.Now().Add(-time.Minute)
	a := newMember(nil, "")
	for seq := range uint64(3) { // the fourth never comes
		deliver(a, 0, seq, start.Add(time.Duration(seq)*time.Second))
	}
	d := testRunner(50*time.Millisecond, a).drain(context.Background(), 0, 1, all4(4))
	if last := start.Add(2 * time.Second); d.lost != 1 || !d.end.Equal(last) {
		t.Errorf("got lost %d, window end %v; want 1, the last delivery %v", d.lost, d.end, last)
	}
}

// The rate reported is the rate achieved, beside the target, with a warning
// when it falls short.
func TestFinishReportsAchievedRate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    publishing
		per  int
		want float64
		warn bool
	}{
		{"on time", publishing{sent: 1000, took: 999 * time.Millisecond, target: 1000}, 1, 1000, false},
		{"half", publishing{sent: 500, took: 999 * time.Millisecond, target: 1000}, 1, 500, true},
		{"per member, on time", publishing{sent: 1000, took: 999 * time.Millisecond, target: 1000}, 100, 10, false},
		{"per member, behind", publishing{sent: 1000, took: 1999 * time.Millisecond, target: 1000}, 100, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warnings bytes.Buffer
			r := testRunner(0)
			r.cfg.Rate, r.cfg.Warnings = tc.p.target/float64(tc.per), &warnings
			res := &Result{Scenario: "fanout"}
			tc.p.start = time.Now()
			r.finish(res, tc.p, tc.per, deliveries{}, startStats(0), startStats(0))
			if d := res.Rate - tc.want; d < -1e-6*tc.want || d > 1e-6*tc.want || res.TargetRate != r.cfg.Rate {
				t.Errorf("got rate %v of target %v, want %v of %v", res.Rate, res.TargetRate, tc.want, r.cfg.Rate)
			}
			if got := strings.HasPrefix(warnings.String(), "warning: "); got != tc.warn {
				t.Errorf("got warnings %q, want one: %v", warnings.String(), tc.warn)
			}
		})
	}
}

// Against a set of what was received: in-order streams from a few
// publishers, with losses, copies and neighbours swapped, are counted
// exactly, however many gaps the losses leave.
func TestTallyMatchesASet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 50 {
		m := newMember(nil, "")
		seen := make(map[[2]uint64]bool)
		var copies int64
		var stream []stamp
		next := make([]uint64, 1+rng.IntN(4))
		for range 2000 {
			pub := rng.IntN(len(next))
			s := stamp{pub: uint32(pub), seq: next[pub]}
			next[pub]++
			switch x := rng.IntN(20); {
			case x == 0: // lost
			case x == 1: // a copy right after
				stream = append(stream, s, s)
			case x == 2 && len(stream) > 0: // overtakes the one before
				stream = append(stream, stream[len(stream)-1])
				stream[len(stream)-2] = s
			default:
				stream = append(stream, s)
			}
		}
		for _, s := range stream {
			key := [2]uint64{uint64(s.pub), s.seq}
			if seen[key] {
				copies++
			}
			seen[key] = true
			m.seen.record(s, time.Now())
		}
		if got, extra := m.seen.got.Load(), m.seen.extra.Load(); got != int64(len(seen)) || extra != copies {
			t.Fatalf("run %d: got %d distinct and %d extra, want %d and %d", run, got, extra, len(seen), copies)
		}
	}
}

// Splitting a gap when maxGaps are remembered gives up the oldest gap
// (which may be the lower part of the one split), never the newest.
func TestTallySplitAtCapacity(t *testing.T) {
	m := newMember(nil, "")
	deliver(m, 0, 0, time.Now())
	for k := range uint64(maxGaps) { // gaps [1,4), [5,8), [9,12), ...
		deliver(m, 0, 4*(k+1), time.Now())
	}
	check := func(seq uint64, wantNew bool) {
		t.Helper()
		got0 := m.seen.got.Load()
		deliver(m, 0, seq, time.Now())
		if isNew := m.seen.got.Load() > got0; isNew != wantNew {
			t.Errorf("message %d: got new %v, want %v (gaps %v)", seq, isNew, wantNew, m.seen.one.gaps)
		}
	}
	check(2, true)  // splits the oldest gap: its lower part [1,2) is given up
	check(1, false) // ...so counts as a copy
	check(6, true)  // splits [5,8): the oldest, [3,4), is given up
	check(3, false)
	check(5, true)
	check(7, true)
	check(4*maxGaps-1, true) // the newest gap is kept throughout
	if n := len(m.seen.one.gaps); n > maxGaps {
		t.Errorf("got %d gaps, want at most %d", n, maxGaps)
	}
}
