package hub

// HistoryStats is what a Broker whose history lives in this node (the
// memory broker) may implement so that the node's metrics show its size.
// A broker whose history is shared by the cluster (Redis) does not: no node
// holds it, and its size is read from the store itself.
type HistoryStats interface {
	// HistorySize reports the logged messages held now, in every room and
	// inbox, and the bytes of their text. It is cheap: kept as the history
	// changes, not counted when asked.
	HistorySize() (messages, bytes int64)
}

// HistorySize reports the size of the history this node holds, and whether
// its broker holds one here (implements HistoryStats).
func (h *Hub) HistorySize() (messages, bytes int64, ok bool) {
	s, ok := h.broker.(HistoryStats)
	if !ok {
		return 0, 0, false
	}
	messages, bytes = s.HistorySize()
	return messages, bytes, true
}
