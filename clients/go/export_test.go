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

// LeavesSent counts the leave_room frames r's Leave put on a connection's
// outbox (resender.leaveFrame): a test's way to see that Leave sent one,
// since the not_in_room answering it is not on Events.
func LeavesSent(r *Reconnecting) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leaves
}

// Connected reports whether r has a connection taking frames: a Join or
// SendFrame now goes on it, not on the next one.
func Connected(r *Reconnecting) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out != nil
}
