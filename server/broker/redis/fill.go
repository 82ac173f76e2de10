package redis

import (
	"context"
	"maps"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// maxGapFill bounds how many missed messages one read of a gap reads back.
const maxGapFill = 1000

// fillDue asks the read-back goroutine to fill topic's gap, unless it is
// due already: then the goroutine will try it (again) in its time, after
// the backoff of a failed read, not once per event held behind it.
func (b *Broker) fillDue(topic string, st *topicState) {
	b.gapsMu.Lock()
	due := b.gapsDue[topic] == st
	b.gapsDue[topic] = st
	b.gapsMu.Unlock()
	if !due {
		kick(b.readBackNow)
	}
}

// filled notes that topic's gap, in st, is no longer due: nothing is held
// behind it; st.gap.mu is held (so that a gap found after is due again).
func (b *Broker) filled(topic string, st *topicState) {
	b.gapsMu.Lock()
	if b.gapsDue[topic] == st {
		delete(b.gapsDue, topic)
	}
	b.gapsMu.Unlock()
}

// fillGaps fills the gaps due (fillDue) and reports whether any is still
// due (its read failed, or it was asked for meanwhile) and, if live events
// wait behind one, when the first of them is to be given up (overdue).
func (b *Broker) fillGaps(ctx context.Context) (due bool, giveUp time.Time) {
	b.gapsMu.Lock()
	todo := maps.Clone(b.gapsDue)
	b.gapsMu.Unlock()
	for topic, st := range todo {
		if ctx.Err() != nil { // closing
			return false, time.Time{}
		}
		b.fill(ctx, topic, st)
	}
	b.gapsMu.Lock()
	todo = maps.Clone(b.gapsDue)
	b.gapsMu.Unlock()
	for _, st := range todo { // not under gapsMu: filled takes it under t.mu
		t := &st.gap
		t.mu.Lock()
		at := t.since.Add(b.cfg.SyncTimeout)
		if t.waiting > 0 && (giveUp.IsZero() || at.Before(giveUp)) {
			giveUp = at
		}
		t.mu.Unlock()
	}
	return len(todo) > 0, giveUp
}

// fill reads back, outside the topic's lock, what topic's log holds that
// is missing before what st holds (see topicGap), then hands over what is
// still missing and what waited behind it, in order, until nothing is
// held (the gap is then no longer due) or a read fails: what is held then
// waits for the next try, unless the gap is overdue (it is then given
// up). Only the read-back goroutine runs it (fillGaps): one fill at a
// time.
func (b *Broker) fill(ctx context.Context, topic string, st *topicState) {
	t := &st.gap
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		if !st.live.Load() {
			b.drop(t)
		}
		if !b.handOver(topic, t) {
			b.filled(topic, st)
			return
		}
		if why := b.overdue(t); why != "" { // not read: the wait is over
			b.giveUp(topic, t, why)
			continue
		}
		from, to := b.missing(t)
		gen := t.gen
		t.mu.Unlock()
		page, err := b.readRange(ctx, topic, from, to)
		t.mu.Lock()
		if t.gen != gen { // dropped, or given up meanwhile: look again
			continue
		}
		if err != nil && ctx.Err() != nil { // closing
			return
		}
		if err != nil {
			if !t.failed {
				t.failed = true
				b.log.Warn("missed messages not read back yet: trying again", "topic", topic,
					"from", from+1, "to", to.Offset, "err", err)
			}
			if why := b.overdue(t); why != "" {
				b.giveUp(topic, t, why)
				continue
			}
			return
		}
		n := 0
		for _, m := range page.Events {
			if m.Epoch == to.Epoch && m.Offset > from && m.Offset <= to.Offset {
				b.dispatchIfLive(topic, m)
				n++
			}
		}
		t.last, t.floor, t.failed = to, false, false
		b.metrics.GapsFilled.Add(int64(n))
		if n > 0 {
			b.log.Warn("read back messages missed while the pub/sub connection was away", "topic", topic, "count", n)
		}
		// What the log no longer holds (trimmed, more than maxGapFill
		// back, or another epoch's) is not there to read: lost.
		if lost := int64(to.Offset-from) - int64(n); lost > 0 {
			b.metrics.GapsLost.Add(lost)
			b.log.Error("missed messages not read back: no longer in the log", "topic", topic,
				"from", from+1, "to", to.Offset, "lost", lost)
		}
	}
}

// missing is the range of offsets, (from, to.Offset] of to's log, missing
// before the first held entry; t.mu is held and something is held.
func (b *Broker) missing(t *topicGap) (from uint64, to hub.Position) {
	to = t.held[0].at
	if t.held[0].ev != nil {
		to.Offset-- // the event itself is there
	}
	return b.seen(t, to), to
}

// readRange reads the events of topic's log in (from, to.Offset], the
// last maxGapFill of them.
func (b *Broker) readRange(ctx context.Context, topic string, from uint64, to hub.Position) (hub.LogPage, error) {
	n := min(to.Offset-from, maxGapFill)
	return b.ReadLog(ctx, topic, hub.LogQuery{After: to.Offset - n, Limit: int(n), Limits: hub.LogLimits{Size: 1 << 30}})
}

// giveUp gives up reading back what is missing before the first held
// entry, and hands over what is held up to the next gap, reporting
// whether there is one; t.mu is held and something is held.
func (b *Broker) giveUp(topic string, t *topicGap, why string) (behind bool) {
	from, to := b.missing(t)
	b.metrics.GapsLost.Add(int64(to.Offset - from))
	b.log.Error("missed messages not read back: given up", "topic", topic, "from", from+1, "to", to.Offset,
		"why", why, "waiting", t.waiting)
	t.last, t.floor, t.failed = to, false, false
	t.gen++ // what a fill is reading is no longer wanted
	behind = b.handOver(topic, t)
	if t.waiting > 0 {
		t.since = time.Now()
	}
	return behind
}
