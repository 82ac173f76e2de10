package hub

// CatchingUp reports how many members of topic's group on h the fan-out
// counts as catching up on it, or -1 if h has no group for topic.
func CatchingUp(h *Hub, topic string) int {
	g := h.lookup(topic)
	if g == nil {
		return -1
	}
	return int(g.catching.Load())
}

// PauseAnnouncements keeps h's sweeper from passing over held announcements
// until resume is called, as if its next pass had not come yet: a test then
// sees them go out only with the frames that wake writers. h must hold no
// announcements when it is called.
func PauseAnnouncements(h *Hub) (resume func()) {
	p := &h.writers.later
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		panic("PauseAnnouncements: the sweeper is already passing over announcements")
	}
	p.running = true // add then lists outboxes without starting a pass
	return func() {
		p.mu.Lock()
		start := len(p.list) > 0
		p.running = start
		p.mu.Unlock()
		if start {
			go p.run(announceDelay, (*outbox).flush)
		}
	}
}

// AnnounceDelay is the longest a held announcement waits.
const AnnounceDelay = announceDelay

// Held reports how many events s holds back on topic while it catches up.
func Held(s *Session, topic string) int {
	s.catch.mu.Lock()
	defer s.catch.mu.Unlock()
	if h := s.catch.find(topic); h != nil {
		return len(h.held)
	}
	return 0
}
