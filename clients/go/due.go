package client

import (
	"iter"
	"slices"

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

// observation is what a frame of the server meant to a Recovery, as it
// stood before the frame (Recovery.observe), for a Reconnecting session's
// resender.
type observation struct {
	fresh   bool   // Observe's answer: f is new to the client
	pending bool   // f's id was a message or private message awaiting its ack
	room    string // that message's room (roomKey), "" if none
	// refusedForNow: f is an error that refuses, for now only (retryable),
	// a frame awaiting its ack or the join of a joined room: one to send
	// again.
	refusedForNow bool
	// refusedJoin is the room whose join f refuses for good (already_in_room
	// is no refusal: the room is joined); Observe forgot it. "" if none.
	refusedJoin string
	// kicked is the room that f, the client's own room_left with kicked and
	// yours set, takes the client out of (kickedFrom); Observe forgot it.
	// "" if none.
	kicked string
}

// observe is Observe, under one lock with what the resender asks of f.
func (r *Recovery) observe(f *chatv1.ServerFrame) observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var o observation
	if sent, ok := r.pending[f.Id]; ok && f.Id != "" {
		o.pending, o.room = true, roomKey(sent.GetMessage().GetRoom())
	}
	if code := f.GetError().GetCode(); f.GetError() != nil && f.Id != "" {
		room, rp := r.joinOf(f.Id)
		switch {
		case retryable(code):
			o.refusedForNow = o.pending || rp != nil
		case code != chatcodes.CodeAlreadyInRoom:
			o.refusedJoin = room
		}
	}
	o.fresh, o.kicked = r.see(f)
	return o
}

// kickedFrom returns the joined room that l, a room_left, says an
// administrator took this session out of (kicked and yours: a copy about
// another session of the same user is not), unless a join of it is still to be
// answered, even one sent after a join accepted: that join came after the
// kick, the server takes it as a fresh join, and the room stays joined.
// "" if none.
func (r *Recovery) kickedFrom(l *chatv1.RoomLeft) string {
	if !l.Kicked || !l.Yours {
		return ""
	}
	room := roomKey(l.Room)
	rp := r.rooms[room]
	if rp == nil || rp.asked > 0 {
		return ""
	}
	return room
}

// leave is Leave: it reports whether room's join was due again (refused
// for now on the connection, and not sent again since: nextDue), the id
// of room's join frames ("" if unknown), and whether the server may hold
// the connection in room (Leave's answer).
func (r *Recovery) leave(room string) (due bool, joinID string, in bool) {
	room = roomKey(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	rp, out := r.rooms[room], r.outOf[room]
	r.forget(room)
	if rp == nil {
		return false, "", !out // unknown: joined by a join_room frame sent by hand, perhaps
	}
	return rp.due, rp.joinID, rp.in || rp.asked > 0
}

// sentJoin notes a join_room frame of room with id, sent by hand unless id
// is the room's own join id (Join's frames are counted in asked): the
// connection may be in room, until a Leave, or a kick that Observe sees.
func (r *Recovery) sentJoin(id, room string) {
	room = roomKey(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	rp := r.rooms[room]
	if rp != nil && id != "" && id == rp.joinID {
		return
	}
	delete(r.outOf, room)
	if rp != nil {
		rp.in = true // may hold: the answer has another id, which Observe ignores
	}
}

// answered notes an answer to one of rp's join frames on the connection.
func (rp *roomPosition) answered() { rp.asked = max(0, rp.asked-1) }

// drop ends the wait for the ack of the frame with id: it was answered
// otherwise.
func (r *Recovery) drop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acked(id)
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

// released returns, in send order, the frames awaiting their ack that are
// not behind their room's join (behindJoin), under one lock.
func (r *Recovery) released() []*chatv1.ClientFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Collect(r.unblocked())
}

// unblocked yields released's frames, in send order; r.mu is held while it
// runs.
func (r *Recovery) unblocked() iter.Seq[*chatv1.ClientFrame] {
	return func(yield func(*chatv1.ClientFrame) bool) {
		for _, id := range r.sent {
			if f := r.pending[id]; !r.waitsForJoin(f) && !yield(f) {
				return
			}
		}
	}
}

func (r *Recovery) waitsForJoin(f *chatv1.ClientFrame) bool {
	room := roomKey(f.GetMessage().GetRoom())
	rp := r.rooms[room]
	return room != "" && rp != nil && !rp.live
}

// nextDue returns the first frame to send again after a refusal for now,
// as it stands now: the join of a room refused for now, in join order,
// then the first frame awaiting its ack that is not behind its room's
// join. nil if none. A join it returns is no longer due.
func (r *Recovery) nextDue() *chatv1.ClientFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	room, rp, f := r.firstDue()
	if rp != nil {
		rp.due = false
		rp.asked++
		return rp.joinFrame(room)
	}
	return f
}

// anyDue reports whether nextDue would return a frame, and leaves it due.
func (r *Recovery) anyDue() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, rp, f := r.firstDue()
	return rp != nil || f != nil
}

// firstDue is what nextDue returns: the room whose join is due and where
// it is, or else the message; "", nil and nil if none.
func (r *Recovery) firstDue() (string, *roomPosition, *chatv1.ClientFrame) {
	for _, room := range r.order {
		if rp := r.rooms[room]; rp.due {
			return room, rp, nil
		}
	}
	for f := range r.unblocked() {
		return "", nil, f
	}
	return "", nil, nil
}
