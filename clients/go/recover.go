package client

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// recovery is what a Reconnecting session keeps so that a new connection
// takes up where the last one left off (DESIGN.md, "History,
// acknowledgements, recovery"): the last position seen in each room and in
// the user's inbox, asked for again with join_room's since and
// recover_private; and the frames sent with an id that no ack has answered
// yet, sent again with the same id (the server delivers an id once).
// Its methods are called with the session's mutex held.
type recovery struct {
	rooms   map[string]*chatv1.Position // room -> the last position seen in it
	joins   map[string]string           // id of a join awaiting its room_joined -> room
	inbox   *chatv1.Position            // the last position seen in the inbox
	pending []*chatv1.ClientFrame       // sent with an id, not yet acknowledged, in order

	prefix string // makes this session's ids unique among the user's sessions
	next   uint64
}

// maxPending bounds the frames kept for an ack. A server that answers none
// (one without history) would otherwise make them pile up.
const maxPending = 1024

// ErrTooManyPending is returned when maxPending frames await their ack.
var ErrTooManyPending = errors.New("reconnecting: too many messages await their ack")

func newRecovery() recovery {
	var b [4]byte
	rand.Read(b[:])
	return recovery{rooms: make(map[string]*chatv1.Position), joins: make(map[string]string), prefix: hex.EncodeToString(b[:])}
}

// newID returns a fresh frame id.
func (rc *recovery) newID(kind string) string {
	rc.next++
	return rc.prefix + "-" + kind + strconv.FormatUint(rc.next, 10)
}

// joinFrame is the frame that joins room, asking for what was missed since
// the last position seen in it, if any.
func (rc *recovery) joinFrame(room string) *chatv1.ClientFrame {
	id := rc.newID("j")
	rc.joins[id] = room
	return &chatv1.ClientFrame{Id: id, Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: room, Since: rc.rooms[room]}}}
}

// recoverFrame asks for the private messages missed since the last position
// seen in the inbox; nil if none was seen yet.
func (rc *recovery) recoverFrame() *chatv1.ClientFrame {
	if rc.inbox == nil {
		return nil
	}
	return &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_RecoverPrivate{RecoverPrivate: &chatv1.RecoverPrivate{Since: rc.inbox}}}
}

// forget drops what is kept for room, once the user has left it.
func (rc *recovery) forget(room string) { delete(rc.rooms, room) }

// track keeps f until its ack if it is a message or a private message with
// an id; it reports whether it did.
func (rc *recovery) track(f *chatv1.ClientFrame) (bool, error) {
	if f.GetId() == "" || (f.GetMessage() == nil && f.GetPrivateMessage() == nil) {
		return false, nil
	}
	if len(rc.pending) >= maxPending {
		return false, ErrTooManyPending
	}
	rc.pending = append(rc.pending, f)
	return true, nil
}

// settle drops the pending frame with id.
func (rc *recovery) settle(id string) {
	for i, f := range rc.pending {
		if f.GetId() == id {
			rc.pending = append(rc.pending[:i], rc.pending[i+1:]...)
			return
		}
	}
}

// observe notes what f tells of positions and acks.
func (rc *recovery) observe(f *chatv1.ServerFrame) {
	switch ev := f.GetEvent().(type) {
	case *chatv1.ServerFrame_Message:
		if m := ev.Message; m.GetRoom() != "" && m.GetOffset() > 0 {
			rc.rooms[m.GetRoom()] = advance(rc.rooms[m.GetRoom()], m.GetOffset(), m.GetEpoch())
		}
	case *chatv1.ServerFrame_RoomJoined:
		room, ours := rc.joins[f.GetId()]
		if !ours {
			return
		}
		delete(rc.joins, f.GetId())
		// Recovered: the missed messages follow and move the position on.
		// Otherwise (a first join, a new epoch, a gap beyond the history)
		// the room starts again from here.
		if j := ev.RoomJoined; !j.GetRecovered() {
			rc.rooms[room] = &chatv1.Position{Offset: j.GetOffset(), Epoch: j.GetEpoch()}
		}
	case *chatv1.ServerFrame_PrivateMessage:
		if p := ev.PrivateMessage; p.GetOffset() > 0 {
			rc.inbox = advance(rc.inbox, p.GetOffset(), p.GetEpoch())
		}
	case *chatv1.ServerFrame_System:
		if rc.inbox == nil && ev.System.GetInbox() != nil {
			rc.inbox = ev.System.GetInbox() // the first connection's: nothing missed before it
		}
	case *chatv1.ServerFrame_PrivateRecovered:
		// Live messages may have come before it, past its position.
		rc.inbox = advance(rc.inbox, ev.PrivateRecovered.GetOffset(), ev.PrivateRecovered.GetEpoch())
	case *chatv1.ServerFrame_Ack:
		rc.settle(f.GetId())
	case *chatv1.ServerFrame_Error:
		if f.GetId() != "" && ev.Error.GetCode() != "unavailable" { // refused for good; unavailable: try again
			rc.settle(f.GetId())
		}
	}
}

// advance is the later of p and (offset, epoch): a new epoch starts over.
func advance(p *chatv1.Position, offset uint64, epoch string) *chatv1.Position {
	if p == nil || p.GetEpoch() != epoch || offset > p.GetOffset() {
		return &chatv1.Position{Offset: offset, Epoch: epoch}
	}
	return p
}
