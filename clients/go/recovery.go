package client

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
)

// This file is the client side of DESIGN.md's "History,
// acknowledgements, recovery": what a client remembers so that a new
// connection picks up exactly where the last one ended.

// Recovery remembers, across connections, what a client has seen and sent:
// the last offset and epoch seen in each room it joined, the position of
// its private inbox, and the frames with an id that got no ack yet. Feed it
// every frame the server sends (Observe) and every frame sent by hand (Track);
// on a new connection, Resume asks for what was missed and sends again
// what was not acknowledged, with the same ids, so that the server delivers
// each message once.
//
// With it, a client sees every room message once, in offset order, and
// every private message once (a replayed one may follow live ones that came
// meanwhile: show them by offset), across any number of reconnects, unless
// the server says it cannot
// (a room_joined or private_recovered with recovered false: the gap was
// beyond the history, or the log's epoch changed). Then Reload fetches
// what the history still holds.
//
// An administrator's kick out of a room (the client's own room_left with
// kicked and yours set: the copies about the user's other sessions, which
// yours does not mark, change nothing) ends its membership as Leave would: a new connection does not
// join it again, which would undo the kick. But a join of it still to be
// answered reached the server after the kick (the answer to one sent
// before would have come first): the room stays joined, and that join's
// answer decides.
//
// Its methods are safe for concurrent use.
type Recovery struct {
	prefix string        // makes generated ids unique to this Recovery
	seq    atomic.Uint64 // the last generated id's number

	mu       sync.Mutex                     // protects the fields below
	welcomes int                            // connections whose welcome was observed
	rooms    map[string]*roomPosition       // joined rooms, by name
	order    []string                       // joined rooms, in join order
	inbox    *chatv1.Position               // every private message up to it was seen; nil before the first welcome
	above    map[uint64]bool                // private offsets seen above inbox (live before the replay)
	pending  map[string]*chatv1.ClientFrame // sent frames awaiting their ack, by id
	sent     []string                       // ids of pending, in send order
	// outOf are the rooms forgotten on the current connection (Leave, a
	// kick, a join refused for good), until joined again: the server does
	// not hold the connection in them, and a leave_room would be refused.
	outOf map[string]bool
}

// roomPosition is where a client is in a room's log.
type roomPosition struct {
	pos     *chatv1.Position // the last message seen; nil before the first room_joined
	history int32            // how many logged messages the first join asks for
	joinID  string           // the id of its join frames, which the own room_joined echoes
	due     bool             // its join was refused for now: join again (nextDue)
	live    bool             // joined on the current connection: its room_joined came since Resume, and no kick since
	// in: the server let the connection into the room since Resume (a
	// room_joined, or already_in_room, answering its join), or may have (a
	// join_room frame of it sent by hand: Track), and no kick took it out
	// since. Unlike live, a join again does not undo it.
	in bool
	// asked counts the join frames sent on the connection (Join, rejoin,
	// nextDue) that no answer came to yet.
	asked int
	// gap is what a join with recovered false could not replay: the
	// messages after gap[0] (in gap[1]'s epoch when both share it) up to
	// gap[1]. nil when nothing is missing.
	gap *[2]*chatv1.Position
}

// NewRecovery returns a Recovery that has seen nothing.
func NewRecovery() *Recovery {
	var b [6]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return &Recovery{
		prefix:  hex.EncodeToString(b[:]),
		rooms:   make(map[string]*roomPosition),
		above:   make(map[uint64]bool),
		pending: make(map[string]*chatv1.ClientFrame),
		outOf:   make(map[string]bool),
	}
}

// roomKey is the name the server gives room (hub.RoomName, NFC): a
// Recovery knows a room by it, so that two spellings of one name are one
// room.
func roomKey(room string) string { return norm.NFC.String(room) }

// Join records room as joined and returns the frame that joins it: with
// since (the last message seen) once the room was seen, otherwise asking
// for the last history messages (0: none). Until that frame's answer
// (room_joined, or already_in_room), the room counts as not joined on the
// connection: the connection may have left it meanwhile (an administrator
// kicked it out).
func (r *Recovery) Join(room string, history int) *chatv1.ClientFrame {
	room = roomKey(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	rp, ok := r.rooms[room]
	if !ok {
		rp = &roomPosition{history: int32(history), joinID: r.newID()}
		r.rooms[room] = rp
		r.order = append(r.order, room)
	}
	rp.due, rp.live = false, false
	rp.asked++
	delete(r.outOf, room)
	return rp.joinFrame(room)
}

func (rp *roomPosition) joinFrame(room string) *chatv1.ClientFrame {
	j := &chatv1.JoinRoom{Room: room}
	if rp.pos != nil {
		j.Since = proto.Clone(rp.pos).(*chatv1.Position)
	} else {
		j.History = rp.history
	}
	return &chatv1.ClientFrame{Id: rp.joinID, Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: j}}
}

// Leave forgets room: it is not joined again on a new connection. It
// reports whether the server may hold the connection in room, so that a
// leave_room is to be sent: a join of it was accepted on the connection,
// or one is still to be answered, or a join_room frame of it was sent by
// hand (Track), or the Recovery does not know the room. Not if every join
// of it sent by Join on the connection was refused for now, nor after the
// connection left it, or, for a room joined by Join, was kicked out of it
// or refused it for good, until joined again (by Join, or by hand): the
// server would answer the leave_room with a bare not_in_room. Of a room
// joined only by hand, the Recovery knows no answer, kick or refusal, only
// a Leave. The answers
// to its joins sent before are moot (the server carries out the leave
// after them): a Join after Leave sends its frames under a new id, and
// Observe ignores theirs.
func (r *Recovery) Leave(room string) bool {
	_, _, in := r.leave(room)
	return in
}

// forget forgets room: the connection is out of it.
func (r *Recovery) forget(room string) {
	r.outOf[room] = true
	delete(r.rooms, room)
	r.order = slices.DeleteFunc(r.order, func(x string) bool { return x == room })
}

// Track records a message or private message frame as sent and awaiting
// its ack, giving it an id if it has none, and returns it. Other frames are
// returned as they are; a join_room frame sent by hand (not one that Join,
// or Resume, made) is noted: the connection may be in its room, and Leave
// says a leave_room is to be sent. Pass such frames through Track too.
func (r *Recovery) Track(f *chatv1.ClientFrame) *chatv1.ClientFrame {
	if j := f.GetJoinRoom(); j != nil {
		r.sentJoin(f.Id, j.Room)
		return f
	}
	if f.GetMessage() == nil && f.GetPrivateMessage() == nil {
		return f
	}
	if f.Id == "" {
		f.Id = r.newID()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[f.Id]; !ok {
		r.sent = append(r.sent, f.Id)
	}
	r.pending[f.Id] = f
	return f
}

// newID returns an id no other Recovery uses (within the server's 64 bytes).
func (r *Recovery) newID() string { return fmt.Sprintf("%s-%d", r.prefix, r.seq.Add(1)) }

// Pending returns the frames sent and not yet acknowledged, in send order.
func (r *Recovery) Pending() []*chatv1.ClientFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*chatv1.ClientFrame, len(r.sent))
	for i, id := range r.sent {
		out[i] = r.pending[id]
	}
	return out
}

// Position returns the last offset and epoch seen in room, nil if none.
func (r *Recovery) Position(room string) *chatv1.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rp := r.rooms[roomKey(room)]; rp != nil && rp.pos != nil {
		return proto.Clone(rp.pos).(*chatv1.Position)
	}
	return nil
}

// Inbox returns the position up to which every private message was seen,
// nil before the first welcome.
func (r *Recovery) Inbox() *chatv1.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inbox == nil {
		return nil
	}
	return proto.Clone(r.inbox).(*chatv1.Position)
}

// Observe updates what was seen from f, a frame from the server, and
// reports whether f is new to the client: false for a room or private
// message already seen (under another connection), which the caller drops.
//
// A welcome fixes the inbox's position on the first connection (older
// private messages were not missed: they predate the client); an ack ends
// the wait for its frame; the own room_joined places the room, and one
// with recovered false moves the room to the server's position (what lies
// before it is for Reload). An already_in_room answering a room's join
// says it is joined too (it was already, under the same name). The
// client's own room_left with kicked and yours set forgets the room (see Recovery),
// unless a join of it is still to be answered.
func (r *Recovery) Observe(f *chatv1.ServerFrame) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	fresh, _ := r.see(f)
	return fresh
}

// see is Observe, with mu held. It also returns the room that f, a kick,
// took the client out of (kickedFrom), "" if none.
func (r *Recovery) see(f *chatv1.ServerFrame) (fresh bool, kicked string) {
	switch {
	case f.GetSystem() != nil:
		r.welcomes++
		if r.inbox == nil {
			r.inbox = position(f.GetSystem().GetInbox())
		}
	case f.GetAck() != nil:
		r.acked(f.Id)
	case f.GetRoomJoined() != nil:
		j := f.GetRoomJoined()
		rp := r.ownJoin(f.Id, j.Room)
		if rp == nil {
			return true, ""
		}
		rp.due, rp.live, rp.in = false, true, true
		rp.answered()
		at := &chatv1.Position{Offset: j.Offset, Epoch: j.Epoch}
		switch {
		case j.Recovered != nil && !*j.Recovered:
			rp.gap = &[2]*chatv1.Position{rp.pos, at}
			rp.pos = at
		case rp.pos == nil:
			// The first join: the history asked for comes, then live
			// messages.
			at.Offset -= min(j.Offset, uint64(rp.history))
			rp.pos = at
		}
	case f.GetRoomLeft() != nil:
		l := f.GetRoomLeft()
		if kicked = r.kickedFrom(l); kicked != "" {
			r.forget(kicked)
		} else if rp := r.rooms[roomKey(l.Room)]; rp != nil && l.Kicked && l.Yours {
			rp.in, rp.live = false, false // a join still to be answered decides
		}
	case f.GetMessage() != nil:
		m := f.GetMessage()
		rp := r.rooms[m.Room]
		if m.Room == "" || m.Offset == 0 || rp == nil {
			return true, ""
		}
		if rp.pos != nil && rp.pos.Epoch == m.Epoch && m.Offset <= rp.pos.Offset {
			return false, ""
		}
		rp.pos = &chatv1.Position{Offset: m.Offset, Epoch: m.Epoch}
	case f.GetPrivateMessage() != nil:
		return r.private(f.GetPrivateMessage()), ""
	case f.GetPrivateRecovered() != nil:
		if p := f.GetPrivateRecovered(); !p.Recovered {
			// What lay between the last seen and the server's position is
			// gone: start again from there.
			r.inbox = &chatv1.Position{Offset: p.Offset, Epoch: p.Epoch}
			r.advanceInbox()
		}
	case f.GetError() != nil && f.Id != "":
		// A frame refused for good is not sent again; one not carried out
		// now stays pending, to be sent again (ResendPending, Resume).
		code := f.GetError().GetCode()
		room, rp := r.joinOf(f.Id)
		if rp != nil {
			rp.answered()
		}
		switch {
		case retryable(code):
			if rp != nil {
				rp.due = true
			}
			return true, ""
		case rp != nil && code == chatcodes.CodeAlreadyInRoom:
			rp.due, rp.live, rp.in = false, true, true
		case rp != nil:
			r.forget(room) // a refused join is not tried again
		}
		r.acked(f.Id)
	}
	return true, kicked
}

// ownJoin returns the room whose join frame had id, now named room: the
// server's spelling (NFC), which its messages carry. nil if id is no join
// of this Recovery.
func (r *Recovery) ownJoin(id, room string) *roomPosition {
	if id == "" {
		return nil
	}
	if rp := r.rooms[room]; rp != nil && rp.joinID == id {
		return rp
	}
	for asked, rp := range r.rooms {
		if rp.joinID == id {
			delete(r.rooms, asked)
			r.rooms[room] = rp
			r.order[slices.Index(r.order, asked)] = room
			return rp
		}
	}
	return nil
}

func (r *Recovery) acked(id string) {
	if _, ok := r.pending[id]; ok {
		delete(r.pending, id)
		r.sent = slices.DeleteFunc(r.sent, func(x string) bool { return x == id })
	}
}

// private records a private message and reports whether it is new. Live
// ones may come before the replay of older ones: the inbox's position
// moves only over an unbroken run of offsets, so that a cut in the middle
// of a recovery asks again for what is still missing.
func (r *Recovery) private(m *chatv1.PrivateMessage) bool {
	if m.Offset == 0 {
		return true
	}
	if r.inbox == nil || r.inbox.Epoch != m.Epoch && r.inbox.Epoch != "" {
		// A new log: this message starts the client's run in it.
		r.inbox, r.above = &chatv1.Position{Offset: m.Offset - 1, Epoch: m.Epoch}, make(map[uint64]bool)
	}
	r.inbox.Epoch = m.Epoch
	if m.Offset <= r.inbox.Offset || r.above[m.Offset] {
		return false
	}
	r.above[m.Offset] = true
	r.advanceInbox()
	return true
}

func (r *Recovery) advanceInbox() {
	for off := range r.above {
		if off <= r.inbox.Offset {
			delete(r.above, off)
		}
	}
	for r.above[r.inbox.Offset+1] {
		delete(r.above, r.inbox.Offset+1)
		r.inbox.Offset++
	}
}

func position(p *chatv1.Position) *chatv1.Position {
	return &chatv1.Position{Offset: p.GetOffset(), Epoch: p.GetEpoch()}
}

// Resume is called on a new connection once its welcome was observed: it
// joins the rooms again from their last positions, asks for the private
// messages missed (unless this is the first connection), and sends again,
// with the same ids, every frame that got no ack (ResendPending). It
// returns the first send error (the connection broke: call it again on the
// next one).
//
// Everything goes at once, and the server takes the frames in order: a
// message to a room whose join it refuses is refused with not_in_room,
// and Observe ends its wait. Reconnecting instead holds each message back
// until its room's join is accepted.
func (r *Recovery) Resume(s *Session) error {
	for _, f := range r.rejoin() {
		if err := s.SendFrame(f); err != nil {
			return err
		}
	}
	return r.ResendPending(s)
}

// rejoin marks every room as not joined on the new connection and returns
// the frames that join them again, then the one that asks for the private
// messages missed, if any.
func (r *Recovery) rejoin() []*chatv1.ClientFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.outOf)
	frames := make([]*chatv1.ClientFrame, 0, len(r.order)+1)
	for _, room := range r.order {
		rp := r.rooms[room]
		rp.due, rp.live, rp.in, rp.asked = false, false, false, 1
		frames = append(frames, rp.joinFrame(room))
	}
	if r.inbox != nil && r.welcomes > 1 { // on the first connection nothing was missed
		frames = append(frames, &chatv1.ClientFrame{Id: "recover_private", Kind: &chatv1.ClientFrame_RecoverPrivate{
			RecoverPrivate: &chatv1.RecoverPrivate{Since: proto.Clone(r.inbox).(*chatv1.Position)}}})
	}
	return frames
}

// ResendPending sends on s, in the order they were first sent and with
// their ids, the frames that got no ack: after an error with code
// unavailable or rate_limited (the server could not take them then; wait
// before, as Reconnecting does), or on a new connection (Resume calls it).
// The server delivers each once, however often it is sent within its dedup
// window.
func (r *Recovery) ResendPending(s *Session) error {
	for _, f := range r.Pending() {
		if err := s.SendFrame(f); err != nil {
			return err
		}
	}
	return nil
}
