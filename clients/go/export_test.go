package client

// Sending reports whether a write of s holds its stream (SendFrame,
// CloseSend, Close): a test's way to know a send is under way.
func Sending(s *Session) bool {
	if s.sendMu.TryLock() {
		s.sendMu.Unlock()
		return false
	}
	return true
}
