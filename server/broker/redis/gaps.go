package redis

import (
	"context"
	"sync"

	"github.com/tertulia/tertulia/server/hub"
)

// maxGapFill bounds how many missed messages one gap fill reads back.
const maxGapFill = 1000

// gaps remembers the last logged offset this node handed to the hub per
// topic (received, or appended here while its pub/sub connection was
// down), so that messages it missed while its pub/sub connection was away (Redis
// pub/sub does not keep them) are read back from the topic's log and handed
// to the hub before the first one that came after: a session in a room
// sees no gap even when its node's subscription broke for a moment.
//
// Both paths that hand logged events to the handler, the receive loop and
// Append's local path (taken while the pub/sub connection is down), go
// through deliver, one at a time per topic: each logged event reaches the
// handler once, in offset order, whichever path brings it first. Topics do
// not wait for each other: a gap's read-back goes to Redis.
type gaps struct {
	mu     sync.Mutex // protects topics
	topics map[string]*topicGap
}

// topicGap is what gaps knows of one topic's log.
type topicGap struct {
	// mu is held while a logged event is noted, the events missed before
	// it are read back, and it is handed over.
	mu    sync.Mutex
	last  hub.Position // the last logged event handed over
	known bool         // last is set
}

// topic is topic's state, made if need be.
func (g *gaps) topic(topic string) *topicGap {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.topics == nil {
		g.topics = make(map[string]*topicGap)
	}
	t := g.topics[topic]
	if t == nil {
		t = &topicGap{}
		g.topics[topic] = t
	}
	return t
}

// forget drops what is known of topic: a node that subscribes afresh has no
// gap to fill.
func (g *gaps) forget(topic string) {
	g.mu.Lock()
	delete(g.topics, topic)
	g.mu.Unlock()
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
	t := b.gaps.topic(topic)
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, known := t.last, t.known
	if known && prev.Epoch == ev.Epoch && ev.Offset <= prev.Offset {
		return
	}
	t.last, t.known = hub.Position{Offset: ev.Offset, Epoch: ev.Epoch}, true
	if known {
		b.fillGap(topic, ev, prev)
	}
	b.dispatchIfLive(topic, ev)
}

// fillGap hands the handler the logged events of topic this node missed
// between prev, the last one it noted, and ev.
func (b *Broker) fillGap(topic string, ev *hub.Event, prev hub.Position) {
	seen := prev.Offset // the last offset of ev's log this node has seen
	if prev.Epoch != ev.Epoch {
		// A new log (Redis restarted empty, or the log expired): none of
		// it reached this node before ev, which would have noted its epoch.
		seen = 0
	}
	if ev.Offset <= seen+1 {
		return
	}
	missed := min(ev.Offset-seen-1, maxGapFill)
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.SyncTimeout)
	defer cancel()
	page, err := b.ReadLog(ctx, topic, hub.LogQuery{After: ev.Offset - 1 - missed, Limit: int(missed),
		Limits: hub.LogLimits{Size: 1 << 30}})
	if err != nil {
		b.log.Warn("missed messages not read back", "topic", topic, "from", seen+1, "to", ev.Offset-1, "err", err)
		return
	}
	n := 0
	for _, m := range page.Events {
		if m.Epoch == ev.Epoch && m.Offset > seen && m.Offset < ev.Offset {
			b.dispatchIfLive(topic, m)
			n++
		}
	}
	b.metrics.GapsFilled.Add(int64(n))
	b.log.Warn("read back messages missed while the pub/sub connection was away", "topic", topic, "count", n)
}
