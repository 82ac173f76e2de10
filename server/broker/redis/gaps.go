package redis

import (
	"context"
	"sync"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// maxHeld bounds the events of one topic held behind a gap (see topicGap).
const maxHeld = 1000

// topicGap is what this node knows of a subscribed topic's log, so that
// the messages it missed while its pub/sub connection was away (Redis
// pub/sub does not keep them) are read back from the log and handed to the
// hub before the first one that came after: a session in a room sees no gap
// even when its node's subscription broke for a moment.
//
// From the moment the node subscribes it knows where the log stood (its
// floor, read by Subscribe once the subscription is in effect); then, the
// last logged event it handed over. The floor is no threshold: an event at
// or below it was appended after the subscription took effect, is on its
// way through pub/sub, and is handed over when it comes. Only what is above
// the floor and missing before an event is read back. If the pub/sub
// connection is lost before the first event is handed over, it may have
// been lost before the floor was read, and the events at or below it
// with it: the read-back then starts from where the log stood before the
// SUBSCRIBE (pre), and may hand over a few events appended just before
// the subscription took effect, each once and in order.
//
// A logged event that comes after a gap (deliver), and the position of
// the log a read-back found beyond what was handed over (readBack), are
// held, in the order they came, until what is missing before them has been
// read back (fill, outside mu, by the read-back goroutine): the pub/sub
// reader never waits on Redis, and the topic's later events wait behind
// the gap rather than go out of order. An unlogged event (presence, an
// unlogged message) that comes while anything is held is held too, in its
// place, and handed over when what came before it has been: the channel's
// order holds for every event. A read that fails (Redis does not answer,
// or answers an error) is tried again, after ProbeInterval at first, then
// less often, up to maxFillBackoff, however many events come behind it.
// The wait is bounded: once live events have waited SyncTimeout behind a
// gap, or more than maxHeld are held, the gap is given up (logged as an
// error, counted in Metrics.GapsLost) and they are handed over. It is
// looked at when an event comes, when a read fails, and by the read-back
// goroutine, woken for it (readBacks): the wait runs past SyncTimeout only
// while that goroutine waits on Redis (a read of the gap, or another
// room's, that hangs, up to a CallTimeout each). A gap with no live event
// behind it (a read-back's) is tried until it is filled. What a read finds
// gone from the log (trimmed, or more than maxGapFill behind) is counted
// in GapsLost too.
//
// Every path that hands logged events to the handler (the receive loop and
// Append's local path, taken while the pub/sub connection is down, through
// deliver; fill) does so under mu: each logged event reaches the handler
// once, in offset order, whichever path brings it first.
type topicGap struct {
	// mu is held while a logged event is noted and handed over or held,
	// and while what a fill read is handed over; never across a call to
	// Redis.
	mu sync.Mutex
	gapMark
	// held are the events, and read-back positions, waiting behind a gap,
	// oldest first; waiting counts the events among them, waiting since
	// since.
	held    []heldEvent
	waiting int
	since   time.Time
	failed  bool   // the last read of the gap failed (logged once)
	gen     uint64 // changes when what a running fill reads is no longer wanted
	// pre is where the log stood before the SUBSCRIBE (if preKnown), and
	// losses the broker's count of pub/sub connections lost then.
	pre      hub.Position
	preKnown bool
	losses   int64
}

// gapMark is what a topicGap knows at one moment.
type gapMark struct {
	last  hub.Position // the last logged event handed over, or the floor
	known bool         // last is set
	floor bool         // last is the floor: nothing handed over since subscribing
	noted uint64       // events noted since subscribing: handed over, dropped or held
}

// heldEvent is an event waiting behind a gap, or (ev nil) a position of
// the log up to which every event is to be handed over.
type heldEvent struct {
	at   hub.Position // ev's place in its log; zero if ev is unlogged
	ev   *hub.Event
	echo uint64 // this node's Publish waiting for ev (publish.go), if not 0
}

// unlogged reports whether h is an unlogged event: it goes as soon as
// what was held before it has gone.
func (h heldEvent) unlogged() bool { return h.ev != nil && h.at.Epoch == "" }

// mark is what t knows now; t.mu is held.
func (t *topicGap) mark() gapMark { return t.gapMark }

// reset forgets what is known of the log: the topic is being subscribed
// afresh. pre is where the log stood before the SUBSCRIBE, if known, and
// losses the pub/sub connections lost by then.
func (b *Broker) reset(t *topicGap, pre hub.Position, preKnown bool, losses int64) {
	t.mu.Lock()
	t.gapMark = gapMark{}
	b.drop(t)
	t.pre, t.preKnown, t.losses = pre, preKnown, losses
	t.mu.Unlock()
}

// drop forgets what t holds (the topic is no longer subscribed), and
// stops a running fill from handing over what it read; t.mu is held.
func (b *Broker) drop(t *topicGap) {
	for _, h := range t.held {
		b.echoed(h.echo)
	}
	t.held, t.waiting, t.since, t.failed = nil, 0, time.Time{}, false
	t.gen++
}

// liveHeld reports whether live events of topic wait behind a gap.
func (b *Broker) liveHeld(topic string) bool {
	st := b.state(topic)
	if st == nil {
		return false
	}
	st.gap.mu.Lock()
	defer st.gap.mu.Unlock()
	return st.gap.waiting > 0
}

// dropGaps forgets what every topic holds behind a gap, releasing the
// calls waiting for it: Close runs it once the loops have stopped.
func (b *Broker) dropGaps() {
	b.subMu.Lock()
	states := make([]*topicState, 0, len(b.topics))
	for _, st := range b.topics {
		states = append(states, st)
	}
	b.subMu.Unlock()
	for _, st := range states {
		st.gap.mu.Lock()
		b.drop(&st.gap)
		st.gap.mu.Unlock()
	}
}

// noteFloor reads where topic's log stands and keeps it as st's floor,
// unless an event has been handed over meanwhile (it then knows better).
// Subscribe calls it once the subscription is in effect and marked live, so
// that every event above the floor either comes through pub/sub or is read
// back. It costs one round trip (HMGET) per first subscription of a topic
// on this node. If Redis does not answer, where the log stood before the
// SUBSCRIBE (pre) is taken for the last event handed over: what is missed
// is read back from there, and the few events appended between that read
// and the SUBSCRIBE may be handed over too, each once and in order (a
// session catching up drops those it has). Only if pre is unknown too
// does the topic go without a floor: what is missed before its first
// event is then not read back. If the pub/sub connection came back while
// the floor was being read, the read-back of its return may have passed
// the topic by (it had no floor yet): it is asked for again.
func (b *Broker) noteFloor(ctx context.Context, topic string, st *topicState) {
	returns := b.metrics.Reconnects.Load()
	pos, err := b.logPositions(ctx, []string{topic})
	t := &st.gap
	t.mu.Lock()
	why := "" // what a failed read leaves, for its warning
	switch {
	case t.known: // an event was handed over meanwhile: it knows better
	case err == nil:
		t.gapMark = gapMark{last: pos[0], known: true, floor: true, noted: t.noted}
	case t.preKnown:
		t.gapMark = gapMark{last: t.pre, known: true, noted: t.noted}
		why = "what is missed is read back from where it stood before subscribing"
	default:
		why = "what is missed before the first event is not read back"
	}
	t.mu.Unlock()
	if err != nil && why != "" {
		b.log.Warn("where the log stands is unknown: "+why, "topic", topic, "err", err)
	}
	if b.metrics.Reconnects.Load() != returns {
		b.readBackDue.Store(true)
		kick(b.readBackNow)
	}
}

// seen is the last offset of at's log this node has handed over, or need
// not be given; t.mu is held.
func (b *Broker) seen(t *topicGap, at hub.Position) uint64 {
	from := t.last
	if t.floor && t.preKnown && b.losses.Load() != t.losses {
		from = t.pre // the events up to the floor may have been lost too
	}
	if from.Epoch != at.Epoch {
		// A new log (Redis restarted empty, or the log expired, or it did
		// not exist when this node subscribed): none of it reached this
		// node before at, which would have noted its epoch.
		return 0
	}
	return from.Offset
}

// handedOver reports whether the logged event at was handed over already;
// t.mu is held.
func (t *topicGap) handedOver(at hub.Position) bool {
	return t.known && !t.floor && t.last.Epoch == at.Epoch && at.Offset <= t.last.Offset
}

// deliver hands the handler ev, an event of topic, if this node subscribes
// to it. A logged event comes after the logged events this node missed
// before it (read back from the log), and not at all if it has been handed
// over already: its offset is at or below the last of its log. (One can
// come both ways when the pub/sub connection returns while this node
// appends: through Redis and by Append's local path.) An unlogged event
// comes after the events that came before it. deliver makes no call to
// Redis: an event behind a gap is held until the gap is filled (fill), and
// the read-back goroutine is asked to fill it. The Publish or Append of
// this node's waiting for ev, echo if not 0, is released once ev has been
// handed over or dropped.
func (b *Broker) deliver(topic string, ev *hub.Event, echo uint64) {
	st := b.state(topic)
	if st == nil {
		b.echoed(echo)
		return
	}
	t := &st.gap
	t.mu.Lock()
	if ev.Offset == 0 || ev.Epoch == "" { // unlogged: nothing to read back before it
		if len(t.held) > 0 && st.live.Load() {
			b.holdBack(topic, st, heldEvent{ev: ev, echo: echo})
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		// Not under t.mu: a slow handler holds up no read-back.
		b.dispatchIfLive(topic, ev)
		b.echoed(echo)
		return
	}
	defer t.mu.Unlock()
	if !st.live.Load() { // not yet, or no longer, subscribed
		b.echoed(echo)
		return
	}
	at := hub.Position{Offset: ev.Offset, Epoch: ev.Epoch}
	if b.behindGap(topic, t, ev, at, echo) {
		b.holdBack(topic, st, heldEvent{at: at, ev: ev, echo: echo})
	}
}

// holdBack holds h, an event that came while what is before it is missing,
// hands over what comes next, gives the gap up if it is overdue, and asks
// for it to be filled if it is still there (else notes that it is not);
// st.gap.mu is held.
func (b *Broker) holdBack(topic string, st *topicState, h heldEvent) {
	t := &st.gap
	t.held = append(t.held, h)
	b.echoHeld(h.echo)
	first := false // the first live event to wait behind this gap
	if t.waiting++; t.waiting == 1 {
		t.since, first = time.Now(), true
	}
	behind := b.handOver(topic, t)
	for behind {
		why := b.overdue(t)
		if why == "" {
			break
		}
		behind = b.giveUp(topic, t, why)
	}
	if behind {
		b.fillDue(topic, st)
		if first {
			// A gap already due and backing off after a failed read
			// may have its retry timed without a give-up: a new wait
			// is read at once, and its give-up timed from now.
			kick(b.readBackNow)
		}
	} else {
		b.filled(topic, st) // given up: the next gap is asked for at once
	}
}

// overdue reports why the gap before what t holds is to be given up, or ""
// if it is not: more than maxHeld wait behind it, or live events have
// waited longer than SyncTimeout; t.mu is held.
func (b *Broker) overdue(t *topicGap) string {
	switch {
	case len(t.held) > maxHeld:
		return "too many events wait behind it"
	case t.waiting > 0 && time.Since(t.since) >= b.cfg.SyncTimeout:
		return "redis did not give them in time"
	}
	return ""
}

// behindGap hands over the logged event ev at at if it comes next, or
// drops it if it was handed over already, and reports whether it is
// neither: it is to be held, behind a gap; t.mu is held.
func (b *Broker) behindGap(topic string, t *topicGap, ev *hub.Event, at hub.Position, echo uint64) bool {
	t.noted++
	switch {
	case len(t.held) > 0: // behind the gap
	case !t.known: // no floor: what came before ev is not known
		t.last, t.known = at, true
		b.dispatchIfLive(topic, ev)
		b.echoed(echo)
		return false
	case t.handedOver(at):
		b.echoed(echo)
		return false
	case at.Offset <= b.seen(t, at)+1: // the next
		t.last, t.floor = at, false
		b.dispatchIfLive(topic, ev)
		b.echoed(echo)
		return false
	}
	return true
}

// handOver hands the handler, in order, the held events that come next,
// dropping those handed over already, and reports whether any is left,
// behind a gap to read back; t.mu is held.
func (b *Broker) handOver(topic string, t *topicGap) (behind bool) {
	for len(t.held) > 0 {
		h := t.held[0]
		switch {
		case h.unlogged():
			b.dispatchIfLive(topic, h.ev)
		case h.ev == nil && h.at.Offset > b.seen(t, h.at),
			h.ev != nil && !t.handedOver(h.at) && h.at.Offset > b.seen(t, h.at)+1:
			return true
		case h.ev != nil && !t.handedOver(h.at):
			t.last, t.floor = h.at, false
			b.dispatchIfLive(topic, h.ev)
		}
		if h.ev != nil {
			if t.waiting--; t.waiting == 0 {
				t.since = time.Time{}
			}
			b.echoed(h.echo)
		}
		t.held[0] = heldEvent{}
		t.held = t.held[1:]
	}
	t.held = nil
	return false
}
