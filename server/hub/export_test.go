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
