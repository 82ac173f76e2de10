package hub

import (
	"slices"
	"sync"
	"sync/atomic"
)

// catchup holds back a session's live events of a topic while the session
// reads that topic's log, so that a replay and the live stream join with no
// gap and no duplicate: subscribe first (live events are held), read the log,
// then send the replay followed by the held events the replay did not cover.
//
// With Redis, a message logged before the read may still be on its way to
// this node when the hold ends: after the release, the topic's messages up
// to the position read (its floor) are dropped until one above it comes;
// messages come in offset order, so none after that is below it.
//
// The topics are a slice, not a map: a session has a floored topic for its
// inbox and for each room it joined until a message comes above the floor,
// which in a quiet room may be never, and a map of one or two of them cost
// each idle session about 250 bytes more.
type catchup struct {
	n atomic.Int32 // topics held or floored; read by every delivery, so kept apart from mu

	mu     sync.Mutex // protects topics
	topics []hold
}

// hold is one topic being caught up.
type hold struct {
	topic   string
	holding bool
	held    []heldEvent
	size    int      // bytes in held, its events encoded for all
	floor   Position // after the release: drop messages up to it
	// counted is the group of the topic that counts this hold among its
	// members' (see group.catching); nil while s is not a member.
	counted *group
}

// heldEvent is one live event kept back, encoded for the session (b), or
// to be encoded for it alone (b nil: its own copy, with its frame id).
type heldEvent struct {
	ev *Event
	b  []byte
}

// logged reports whether ev is a message numbered in a log.
func logged(ev *Event) bool {
	return (ev.Kind == KindMessage || ev.Kind == KindPrivateMessage) && ev.Epoch != ""
}

// find returns topic's hold, or nil; the caller holds mu, and the pointer
// is good until it lets mu go or a topic is added or forgotten.
func (c *catchup) find(topic string) *hold {
	for i := range c.topics {
		if c.topics[i].topic == topic {
			return &c.topics[i]
		}
	}
	return nil
}

// holdBack starts holding topic's live events for s.
func (s *Session) holdBack(topic string) {
	s.catch.mu.Lock()
	defer s.catch.mu.Unlock()
	if h := s.catch.find(topic); h != nil {
		*h = hold{topic: topic, holding: true, counted: h.counted}
		return
	}
	s.catch.topics = append(s.catch.topics, hold{topic: topic, holding: true})
	s.catch.n.Add(1)
}

// heldBack keeps ev (encoded as b) if s holds topic back, or drops it if it
// is below topic's floor, and reports whether it did either. The hub's
// fan-out calls it for each member while any member of the topic's group
// catches up on it (see group.catching). The held events alone are held
// to the session's queue bounds (what is queued besides them is counted
// when they are released): past them they are dropped and the session is
// disconnected as slow, as a queue that overflows is.
func (s *Session) heldBack(topic string, ev *Event, b []byte) bool {
	if s.catch.n.Load() == 0 {
		return false
	}
	s.catch.mu.Lock()
	defer s.catch.mu.Unlock()
	h := s.catch.find(topic)
	switch {
	case h == nil:
		return false
	case h.holding:
		switch {
		case !s.out.open():
			// Overflowed (or ending): nothing held would go out.
		case s.out.fits(len(h.held)+1, h.size+len(b)):
			h.held = append(h.held, heldEvent{ev, b})
			h.size += len(b)
		default:
			h.held, h.size = nil, 0
			if s.out.overflow() {
				s.closeSlow()
			}
		}
		return true
	case !logged(ev):
		return false
	case ev.Epoch == h.floor.Epoch && ev.Offset <= h.floor.Offset:
		return true
	}
	s.forgetLocked(topic) // above the floor: from now on, everything goes
	return false
}

// forgetLocked ends topic's catching up. The slice goes with its last
// topic, so that a session that has caught up holds none.
func (s *Session) forgetLocked(topic string) {
	i := slices.IndexFunc(s.catch.topics, func(h hold) bool { return h.topic == topic })
	if i < 0 {
		return
	}
	if g := s.catch.topics[i].counted; g != nil {
		g.catching.Add(-1)
	}
	s.catch.topics = slices.Delete(s.catch.topics, i, i+1)
	s.catch.n.Add(-1)
	if len(s.catch.topics) == 0 {
		s.catch.topics = nil
	}
}

// forgetHold ends any catching up of topic.
func (s *Session) forgetHold(topic string) {
	s.catch.mu.Lock()
	s.forgetLocked(topic)
	s.catch.mu.Unlock()
}

// release stops holding topic back: it queues first, then the held events
// that neither skip drops nor are at or below floor (the position of the log
// read), in the order they came. Messages at or below floor that come later
// are dropped too. Live events of topic that come meanwhile wait for it.
func (s *Session) release(topic string, first []*Event, floor Position, skip func(*Event) bool) {
	s.catch.mu.Lock()
	defer s.catch.mu.Unlock()
	h := s.catch.find(topic)
	if h == nil {
		return
	}
	for _, ev := range first {
		s.send(ev)
	}
	h.holding, h.floor = false, floor
	above := floor.Epoch == "" // no floor: nothing to drop
	for _, e := range h.held {
		if skip != nil && skip(e.ev) {
			continue
		}
		if logged(e.ev) && !above {
			if e.ev.Epoch == floor.Epoch && e.ev.Offset <= floor.Offset {
				continue
			}
			above = true
		}
		if e.b == nil {
			s.send(e.ev)
		} else {
			s.enqueue(e.b)
		}
	}
	h.held, h.size = nil, 0
	if above {
		s.forgetLocked(topic)
	}
}
