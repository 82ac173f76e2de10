package hub

import (
	"sync"
	"sync/atomic"
)

// catchup holds back a session's live events of a topic while the session
// reads that topic's log, so that a replay and the live stream join with no
// gap and no duplicate: subscribe first (live events are held), read the log,
// then send the replay followed by the held events the replay did not cover.
type catchup struct {
	n atomic.Int32 // topics held; read by every delivery, so kept apart from mu

	mu     sync.Mutex // protects topics
	topics map[string][]held
}

// held is one live event kept back, already encoded for the session.
type held struct {
	ev *Event
	b  []byte
}

// holdBack starts holding topic's live events for s.
func (s *Session) holdBack(topic string) {
	s.catch.mu.Lock()
	if s.catch.topics == nil {
		s.catch.topics = make(map[string][]held)
	}
	if _, ok := s.catch.topics[topic]; !ok {
		s.catch.topics[topic] = []held{}
		s.catch.n.Add(1)
	}
	s.catch.mu.Unlock()
}

// heldBack keeps ev (encoded as b) if s holds topic back, and reports whether
// it did. The hub's fan-out calls it for every delivery; it costs one atomic
// load while nothing is held.
func (s *Session) heldBack(topic string, ev *Event, b []byte) bool {
	if s.catch.n.Load() == 0 {
		return false
	}
	s.catch.mu.Lock()
	defer s.catch.mu.Unlock()
	evs, ok := s.catch.topics[topic]
	if ok {
		s.catch.topics[topic] = append(evs, held{ev, b})
	}
	return ok
}

// release stops holding topic back: it queues first, then the held events
// that skip does not drop, in the order they came, and returns those. Live
// events of topic that come meanwhile wait for it, and follow.
func (s *Session) release(topic string, first []*Event, skip func(*Event) bool) []*Event {
	s.catch.mu.Lock()
	defer s.catch.mu.Unlock()
	evs, ok := s.catch.topics[topic]
	if ok {
		delete(s.catch.topics, topic)
		s.catch.n.Add(-1)
	}
	for _, ev := range first {
		s.send(ev)
	}
	var kept []*Event
	for _, h := range evs {
		if skip == nil || !skip(h.ev) {
			s.enqueue(h.b)
			kept = append(kept, h.ev)
		}
	}
	return kept
}
