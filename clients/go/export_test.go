package client

import chatv1 "github.com/tertulia/tertulia/proto/chat/v1"

// Sending reports whether a write of s holds its stream (SendFrame,
// CloseSend, Close): a test's way to know a send is under way.
func Sending(s *Session) bool {
	if s.sendMu.TryLock() {
		s.sendMu.Unlock()
		return false
	}
	return true
}

// BehindJoin reports whether the message f waits for its room's join
// (Recovery.behindJoin): a Reconnecting session would not send it yet.
func BehindJoin(r *Recovery, f *chatv1.ClientFrame) bool { return r.behindJoin(f) }
