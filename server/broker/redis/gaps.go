package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// maxGapFill bounds how many missed messages one gap fill reads back.
const maxGapFill = 1000

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
// the floor and missing before an event is read back.
//
// The paths that hand logged events to the handler, the receive loop and
// Append's local path (taken while the pub/sub connection is down) through
// deliver, and readBack, go one at a time per topic, under mu: each logged
// event reaches the handler once, in offset order, whichever path brings it
// first. A gap's read-back goes to Redis under mu: the receive loop, when it
// has an event of that topic meanwhile, waits for it (up to SyncTimeout);
// it does not wait for the read-backs of other topics.
type topicGap struct {
	// mu is held while a logged event is noted, the events missed before
	// it are read back, and it is handed over.
	mu sync.Mutex
	gapMark
}

// gapMark is what a topicGap knows at one moment.
type gapMark struct {
	last  hub.Position // the last logged event handed over, or the floor
	known bool         // last is set
	floor bool         // last is the floor: nothing handed over since subscribing
}

// mark is what t knows now; t.mu is held.
func (t *topicGap) mark() gapMark { return t.gapMark }

// reset forgets what is known of the log: the topic is being subscribed
// afresh.
func (t *topicGap) reset() {
	t.mu.Lock()
	t.gapMark = gapMark{}
	t.mu.Unlock()
}

// noteFloor reads where topic's log stands and keeps it as st's floor,
// unless an event has been handed over meanwhile (it then knows better).
// Subscribe calls it once the subscription is in effect and marked live, so
// that every event above the floor either comes through pub/sub or is read
// back. It costs one round trip (HMGET) per first subscription of a topic
// on this node. If Redis does not answer, the topic goes without a floor:
// what is missed before its first event is not read back. If the pub/sub
// connection came back while the floor was being read, the read-back of
// its return may have passed the topic by (it had no floor yet): it is
// asked for again.
func (b *Broker) noteFloor(ctx context.Context, topic string, st *topicState) {
	returns := b.metrics.Reconnects.Load()
	pos, err := b.logPositions(ctx, []string{topic})
	if err != nil {
		b.log.Warn("where the log stands is unknown: what is missed before its first event is not read back",
			"topic", topic, "err", err)
		return
	}
	t := &st.gap
	t.mu.Lock()
	if !t.known {
		t.gapMark = gapMark{last: pos[0], known: true, floor: true}
	}
	t.mu.Unlock()
	if b.metrics.Reconnects.Load() != returns {
		b.readBackDue.Store(true)
		kick(b.readBackNow)
	}
}

// readBackBatch is how many topics' positions one pipelined round trip
// reads when the pub/sub connection is back.
const readBackBatch = 512

// readBacks runs readBack each time it is asked (readBackNow) while it is
// due, the pub/sub connection is up and Redis answers, until ctx ends. The
// pub/sub reader asks when its connection is back, and the heartbeat while
// readBack is still due: neither waits for it. (With thousands of rooms
// behind, reading back takes seconds: the pub/sub reader goes on handing
// over PONGs and the live events of the rooms not being read back at the
// time, and heartbeats go on.)
func (b *Broker) readBacks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.readBackNow:
		}
		if b.readBackDue.Load() && b.up.Load() && !b.down.Load() {
			b.readBack(ctx)
		}
	}
}

// readBack hands the handler, for every topic this node subscribes to,
// the logged events appended after the last one it handed over (or its
// floor): those it missed while its pub/sub connection was away, which
// would otherwise wait for the topic's next event. readBacks runs it once
// the connection is back: by then Redis has subscribed the connection
// again to every channel, so what is appended after the positions are read
// comes through pub/sub, and is dropped there if it was read back already.
//
// Before it compares, it waits until the pub/sub reader has handed over
// what Redis published on the connection before the positions were read
// (a PING's PONG comes after it): only what did not come that way, which
// will not come, is read back. Events still on their way, read back first,
// would be dropped when they came if they were at or below a fresh
// subscription's floor (lost), and handed over out of order otherwise.
//
// It costs one pipelined round trip per readBackBatch topics, one PING on
// the pub/sub connection, and one read of the log per topic that missed
// something. What cannot be read (Redis does not answer) is tried again on
// the next heartbeat while the connection is up (readBackDue). It must not
// run in the pub/sub reader, which it waits for.
func (b *Broker) readBack(ctx context.Context) {
	b.readBackDue.Store(false)
	var topics []string
	var states []*topicState
	b.subMu.Lock()
	for topic, st := range b.topics {
		if st.live.Load() {
			topics, states = append(topics, topic), append(states, st)
		}
	}
	b.subMu.Unlock()
	// What each topic knows before its position is read: one that has
	// been handed an event since (live, by its gap's read) is up to date
	// with a position the read may be older than.
	marks := make([]gapMark, len(states))
	for i, st := range states {
		st.gap.mu.Lock()
		marks[i] = st.gap.mark()
		st.gap.mu.Unlock()
	}
	pos, err := b.logPositions(ctx, topics)
	if err == nil {
		err = b.sync(ctx)
	}
	if err != nil {
		b.readBackDue.Store(true)
		if ctx.Err() == nil {
			b.log.Warn("missed messages not read back yet", "err", err)
		}
		return
	}
	for i, st := range states {
		if ctx.Err() != nil { // closing
			return
		}
		t := &st.gap
		t.mu.Lock()
		if st.live.Load() && t.known && t.mark() == marks[i] &&
			(pos[i].Epoch != t.last.Epoch || pos[i].Offset > t.last.Offset) {
			if b.fillGap(topics[i], hub.Position{Offset: pos[i].Offset + 1, Epoch: pos[i].Epoch}, t.last) {
				t.last, t.floor = pos[i], false
			} else {
				b.readBackDue.Store(true)
			}
		}
		t.mu.Unlock()
	}
}

// logPositions reads where the logs of topics stand, in pipelined batches.
func (b *Broker) logPositions(ctx context.Context, topics []string) ([]hub.Position, error) {
	out := make([]hub.Position, 0, len(topics))
	for start := 0; start < len(topics); start += readBackBatch {
		part := topics[start:min(start+readBackBatch, len(topics))]
		cmds := make([]*goredis.SliceCmd, len(part))
		err := b.call(ctx, func(ctx context.Context) error {
			_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for i, topic := range part {
					cmds[i] = p.HMGet(ctx, b.logKeys(topic)[0], "o", "e")
				}
				return nil
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read where the logs stand: %w", err)
		}
		for _, c := range cmds {
			pos, err := parsePosition(c.Val())
			if err != nil {
				return nil, err
			}
			out = append(out, pos)
		}
	}
	return out, nil
}

// parsePosition reads HMGET's reply for a log's offset and epoch; a log
// that does not exist stands at {0, ""}.
func parsePosition(vals []any) (hub.Position, error) {
	if len(vals) != 2 || vals[0] == nil {
		return hub.Position{}, nil
	}
	o, _ := vals[0].(string)
	e, _ := vals[1].(string)
	n, err := strconv.ParseUint(o, 10, 64)
	if err != nil {
		return hub.Position{}, fmt.Errorf("log offset %q: %w", o, err)
	}
	return hub.Position{Offset: n, Epoch: e}, nil
}

// deliver hands the handler ev, an event of topic, if this node subscribes
// to it. A logged event comes after the logged events this node missed
// before it (read back from the log), and not at all if it has been handed
// over already: its offset is at or below the last of its log. (One can
// come both ways when the pub/sub connection returns while this node
// appends: through Redis and by Append's local path.)
func (b *Broker) deliver(topic string, ev *hub.Event) {
	if ev.Offset == 0 || ev.Epoch == "" {
		b.dispatchIfLive(topic, ev)
		return
	}
	st := b.state(topic)
	if st == nil {
		return
	}
	t := &st.gap
	t.mu.Lock()
	defer t.mu.Unlock()
	if !st.live.Load() { // not yet, or no longer, subscribed
		return
	}
	prev, known, floor := t.last, t.known, t.floor // what deliver reads before it notes ev
	if known && !floor && prev.Epoch == ev.Epoch && ev.Offset <= prev.Offset {
		return
	}
	at := hub.Position{Offset: ev.Offset, Epoch: ev.Epoch}
	t.gapMark = gapMark{last: at, known: true}
	if known {
		b.fillGap(topic, at, prev)
	}
	b.dispatchIfLive(topic, ev)
}

// fillGap hands the handler the logged events of topic this node missed
// between prev, the last one it noted (or its floor), and at, and reports
// whether it could read them.
func (b *Broker) fillGap(topic string, at, prev hub.Position) bool {
	seen := prev.Offset // the last offset of at's log this node has seen
	if prev.Epoch != at.Epoch {
		// A new log (Redis restarted empty, or the log expired, or it did
		// not exist when this node subscribed): none of it reached this
		// node before at, which would have noted its epoch.
		seen = 0
	}
	if at.Offset <= seen+1 {
		return true
	}
	missed := min(at.Offset-seen-1, maxGapFill)
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.SyncTimeout)
	defer cancel()
	page, err := b.ReadLog(ctx, topic, hub.LogQuery{After: at.Offset - 1 - missed, Limit: int(missed),
		Limits: hub.LogLimits{Size: 1 << 30}})
	if err != nil {
		b.log.Warn("missed messages not read back", "topic", topic, "from", seen+1, "to", at.Offset-1, "err", err)
		return false
	}
	n := 0
	for _, m := range page.Events {
		if m.Epoch == at.Epoch && m.Offset > seen && m.Offset < at.Offset {
			b.dispatchIfLive(topic, m)
			n++
		}
	}
	b.metrics.GapsFilled.Add(int64(n))
	b.log.Warn("read back messages missed while the pub/sub connection was away", "topic", topic, "count", n)
	return true
}
