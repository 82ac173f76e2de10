package client

import (
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
)

// This file is what a Reconnecting session's resender asks of the
// Recovery: which frames are due to go again, and which wait for their
// room's join.

// retryable reports whether an error with code refuses a frame for now
// only: the server could not carry it out (unavailable: its broker is out
// of reach) or not yet (rate_limited), and the same frame may pass later.
// Every other code refuses it for good.
func retryable(code string) bool {
	return code == chatcodes.CodeUnavailable || code == chatcodes.CodeRateLimited
}

// refusedForNow reports whether f is an error that refuses, for now only
// (retryable), a frame still awaiting its ack or the join of a joined room:
// one to send again.
func (r *Recovery) refusedForNow(f *chatv1.ServerFrame) bool {
	if f.GetError() == nil || f.Id == "" || !retryable(f.GetError().GetCode()) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.pending[f.Id]
	_, rp := r.joinOf(f.Id)
	return ok || rp != nil
}

// refusedJoin returns the room whose join f refuses for good, "" if f is
// no such refusal. Observe forgets that room; call it before.
// already_in_room is no refusal: the room is joined.
func (r *Recovery) refusedJoin(f *chatv1.ServerFrame) string {
	code := f.GetError().GetCode()
	if f.GetError() == nil || f.Id == "" || retryable(code) || code == chatcodes.CodeAlreadyInRoom {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	room, _ := r.joinOf(f.Id)
	return room
}

// kickedOut returns the room that f, the client's own room_left with
// kicked and yours set, takes the client out of (Recovery.kickedFrom), "" if f is no
// such frame. Observe forgets that room; call it before.
func (r *Recovery) kickedOut(f *chatv1.ServerFrame) string {
	if !f.GetRoomLeft().GetKicked() {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kickedFrom(f.GetRoomLeft())
}

// isPending reports whether the frame with id awaits its ack.
func (r *Recovery) isPending(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.pending[id]
	return ok
}

// drop ends the wait for the ack of the frame with id: it was answered
// otherwise.
func (r *Recovery) drop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acked(id)
}

// roomOf returns the room of the message with id that awaits its ack, ""
// if none.
func (r *Recovery) roomOf(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return roomKey(r.pending[id].GetMessage().GetRoom())
}

// joinOf returns the joined room whose join frames have id, and where it
// is; "" and nil if none.
func (r *Recovery) joinOf(id string) (string, *roomPosition) {
	for room, rp := range r.rooms {
		if rp.joinID == id {
			return room, rp
		}
	}
	return "", nil
}

// behindJoin reports whether f is a message to a room joined (Join) but
// not yet on the current connection: its join was sent, or is to be sent
// again, and no room_joined has answered it since the connection began
// (rejoin). Such a message
// would be refused with not_in_room: it waits for the join.
func (r *Recovery) behindJoin(f *chatv1.ClientFrame) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waitsForJoin(f)
}

func (r *Recovery) waitsForJoin(f *chatv1.ClientFrame) bool {
	room := roomKey(f.GetMessage().GetRoom())
	rp := r.rooms[room]
	return room != "" && rp != nil && !rp.live
}

// nextDue returns the first frame to send again after a refusal for now,
// as it stands now: the join of a room refused for now, in join order,
// then the first frame awaiting its ack that is not behind its room's
// join. nil if none.
func (r *Recovery) nextDue() *chatv1.ClientFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, room := range r.order {
		if rp := r.rooms[room]; rp.due {
			rp.due = false
			return rp.joinFrame(room)
		}
	}
	for _, id := range r.sent {
		if f := r.pending[id]; !r.waitsForJoin(f) {
			return f
		}
	}
	return nil
}
