package client

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
)

// breachGap is how long a client must keep within a node's rates for its
// run of rate_limited answers to end (the node's hub.breachGap; DESIGN.md,
// "Limits"): a run that lasts the node's FloodTimeout is closed as a flood.
// A resend after rate_limited waits at least this long, so that each run
// of refusals ends before the next resend.
const breachGap = time.Second

// resender is how a Reconnecting session sends again, on a live
// connection, what the server refused for now: a message or a join
// answered by an error with code unavailable (its broker out of reach) or
// rate_limited. "No ack means not accepted: resending is safe" (DESIGN.md),
// and the server delivers an id once, so the refused frames go again, with
// their ids, after a wait.
//
// From the first such refusal until no frame is due, the connection is
// held: new messages are only tracked, and the frames due (the joins
// refused for now, then the messages awaiting their ack, in send order) go
// one at a time, each released by the answer to the one before. A round
// starts after the wait and ends at its first refusal, which starts the
// wait again. So each round sends at most one frame the server refuses,
// and the room reads one sender's messages in send order. After
// rate_limited the wait is at least breachGap, so the node's run of
// breaches ends before each round: a backlog however large is worked off
// at the server's rate, never taken for a flood. The wait is the session's
// Backoff, its attempt counting the rounds in a row that got nothing
// through (rounds that move frames keep the shortest wait); a round that
// gets every due frame through ends the hold and starts the backoff over.
//
// Messages sent before the first refusal came back were already on their
// way: the server may take one of those before the refused one, as it
// answers each as it comes.
//
// A message to a room whose join has not been accepted on the connection
// (sent, or refused for now and due again) is not sent, held or not: it
// waits for that room's room_joined (or already_in_room answering the
// join: the connection was in the room already), since the server would
// refuse it with not_in_room. The messages waiting go then, in send order. If the join is
// refused for good (banned, forbidden, ...), each fails with that join's
// error, handed over as an error frame with the message's id; so do those
// sent to the room later on the connection, which the server refuses with
// not_in_room, until the room is joined again or left. If an administrator
// kicks the client out of the room (Recovery forgets it), each of the
// room's messages not sent yet (behind its join, or held) fails with code
// not_in_room and a text saying so; but a join of the room still to be
// answered came after the kick, and they wait for it.
//
// A resender belongs to one connection and is dropped with it (the next
// connection sends again what awaits its ack: resender.flush). Its methods are called
// with the Reconnecting's mu held, and never wait on the network: they put
// their frames on the connection's outbox. It starts no goroutine (the
// serving goroutine selects on its timer's C), so stopping it leaves
// nothing behind.
type resender struct {
	rec  *Recovery
	out  *outbox
	wait Backoff
	// timer fires when the frames due are to go again; stopped otherwise.
	// Reset and Stop leave no stale tick in C (Go 1.23 timers).
	timer    *time.Timer
	held     bool   // a refusal for now is being worked off: new messages wait
	inflight string // the id of the frame resent and not yet answered; "" if none
	moved    bool   // the current round got a frame through
	rounds   int    // rounds in a row that got nothing through
	// owed counts, by id, the answers still to come to messages sent on
	// this connection. A message awaiting its ack that owes none is not on
	// its way: it waits for its room's join, or for the hold to end.
	owed map[string]int
	// refused holds, by room, the error that refused its join for good on
	// this connection, until Join or Leave: it answers the room's messages
	// in place of the server's not_in_room.
	refused map[string]*chatv1.Error
	// leaves are the ids of the leave_room frames sent on this connection
	// (leaveFrame) and not yet answered.
	leaves map[string]bool
	// lost are the answers to the messages a Leave failed (left), for the
	// serving goroutine to hand over on Events; lostC says there are some.
	lost  []*chatv1.ServerFrame
	lostC chan struct{}
}

func newResender(rec *Recovery, out *outbox, wait Backoff) *resender {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &resender{rec: rec, out: out, wait: wait, timer: t, owed: make(map[string]int),
		refused: make(map[string]*chatv1.Error), leaves: make(map[string]bool), lostC: make(chan struct{}, 1)}
}

// leaveFrame returns a leave_room of room with an id of its own, noted so
// that observe hides the not_in_room answering it, as the pages do: the
// server may not have held the connection in room after all (a join of it
// still to be answered was refused), and Leave's caller wanted it out.
func (rs *resender) leaveFrame(room string) *chatv1.ClientFrame {
	id := rs.rec.newID()
	rs.leaves[id] = true
	return &chatv1.ClientFrame{Id: id, Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: room}}}
}

// resending reports whether the frame sent again and not yet answered has
// id, not "": a room's join, refused for now and sent again (nextDue).
func (rs *resender) resending(id string) bool { return id != "" && rs.inflight == id }

// sent records that the message with id was sent on the connection.
func (rs *resender) sent(id string) { rs.owed[id]++ }

// add sends f, a message just tracked, unless it must wait: behind its
// room's join, or while the connection is held (next sends it). It
// returns where its write's result comes, nil if it waits.
func (rs *resender) add(f *chatv1.ClientFrame) <-chan error {
	if rs.held || rs.rec.behindJoin(f) {
		return nil // flush or next sends it
	}
	rs.sent(f.Id)
	return rs.out.send(f)
}

// flush sends, in send order, the messages awaiting their ack that are not
// on their way (they owe no answer on this connection) and no longer
// behind their room's join: it has been accepted, or the room was left. A
// held connection sends them as they come due (next). When the hold ends,
// every message awaiting its ack is on its way or behind its room's join
// (nextDue found none due), so the messages flush sends are those that
// waited for their room's join.
func (rs *resender) flush() {
	if rs.held {
		return
	}
	for _, f := range rs.rec.released() {
		if rs.owed[f.Id] == 0 {
			rs.out.put(f) // a failed send ends the connection, and the resender with it
			rs.sent(f.Id)
		}
	}
}

// clear forgets that the join of room was refused: it is joined again, or
// left.
func (rs *resender) clear(room string) { delete(rs.refused, roomKey(room)) }

// left fails the messages to room not on their way, which wait for its
// join: the client left room while that join, refused for now, waited to
// be sent again (Recovery.leave), or was sent again and not answered yet
// (resending). Sent at once, ahead of the wait, it would
// likely be refused again, and they after the leave with a bare
// not_in_room. Each is answered with code not_in_room and a text saying
// so, the pages' (recovery.js), handed over by the serving goroutine
// (failedC). If that join was all that was due, the hold ends.
func (rs *resender) left(room string) {
	room = roomKey(room)
	rs.lost = append(rs.lost, rs.fail(room, &chatv1.Error{Code: chatcodes.CodeNotInRoom,
		Message: fmt.Sprintf("left room %q before its join was accepted", room)})...)
	if len(rs.lost) > 0 {
		select {
		case rs.lostC <- struct{}{}:
		default: // already said
		}
	}
	rs.release()
}

// release ends the hold if nothing is due and no frame resent is awaiting
// its answer, as next does once a round has sent every frame due, and
// stops the wait for the next round. Unlike next, it sends nothing: a
// frame due still waits out the wait.
func (rs *resender) release() {
	if rs.held && rs.inflight == "" && !rs.rec.anyDue() {
		rs.held, rs.rounds = false, 0
		rs.timer.Stop()
	}
}

// failedC delivers when left failed messages: takeFailed returns their
// answers.
func (rs *resender) failedC() <-chan struct{} { return rs.lostC }

// takeFailed returns, once, the answers left made.
func (rs *resender) takeFailed() []*chatv1.ServerFrame {
	lost := rs.lost
	rs.lost = nil
	return lost
}

// fail fails the messages to room not on their way, which wait for its
// join, refused for good by refusal: it returns an error frame for each,
// with its id and the refusal's code and text, and ends its wait for an
// ack.
func (rs *resender) fail(room string, refusal *chatv1.Error) []*chatv1.ServerFrame {
	var failed []*chatv1.ServerFrame
	for _, f := range rs.rec.Pending() {
		if to := f.GetMessage().GetRoom(); rs.owed[f.Id] == 0 && to != "" && roomKey(to) == room {
			rs.rec.drop(f.Id)
			failed = append(failed, &chatv1.ServerFrame{Id: f.Id, Event: &chatv1.ServerFrame_Error{
				Error: &chatv1.Error{Code: refusal.Code, Message: refusal.Message}}})
		}
	}
	return failed
}

// observe passes f, a frame of the connection, to the Recovery and takes
// the next step of the resend that f answers. It reports whether f is for
// the reader of Events: not a message already seen (Recovery.Observe), nor
// a second answer to a message already acknowledged (one sent again before
// its first answer came back), so that each message gets one ack, nor a
// not_in_room answering a Leave's leave_room (leaveFrame). failed
// are the answers to the messages that waited behind a join f refuses for
// good, or behind the join of a room f (a kick) takes the client out of,
// to hand over after f.
func (rs *resender) observe(f *chatv1.ServerFrame) (fresh bool, failed []*chatv1.ServerFrame) {
	if f.Id != "" && rs.leaves[f.Id] {
		delete(rs.leaves, f.Id)
		if f.GetError().GetCode() == chatcodes.CodeNotInRoom {
			return false, nil // the answer to a Leave's leave_room: out already
		}
	}
	seen := rs.rec.observe(f)
	answer := f.Id != "" && (f.GetAck() != nil || f.GetError() != nil)
	if answer && rs.owed[f.Id] > 0 {
		if rs.owed[f.Id]--; rs.owed[f.Id] == 0 {
			delete(rs.owed, f.Id)
		}
		if !seen.pending {
			return false, nil
		}
	}
	if !seen.fresh {
		return false, nil
	}
	if f.GetError().GetCode() == chatcodes.CodeNotInRoom {
		// A message sent after its room's join was refused, that refusal
		// came back meanwhile: it was not joined for that reason.
		if e := rs.refused[seen.room]; e != nil {
			f.GetError().Code, f.GetError().Message = e.Code, e.Message
		}
	}
	if room := seen.refusedJoin; room != "" {
		rs.refused[room] = proto.CloneOf(f.GetError()) // f goes to the reader of Events
		failed = rs.fail(room, f.GetError())
	}
	if room := seen.kicked; room != "" {
		failed = rs.fail(room, &chatv1.Error{Code: chatcodes.CodeNotInRoom,
			Message: fmt.Sprintf("kicked from room %q", room)})
		rs.release() // its join, if due, is forgotten
	}
	switch {
	case seen.refusedForNow:
		rs.held = true
		if f.Id == rs.inflight {
			rs.inflight = ""
			if !rs.moved {
				rs.rounds++
			}
		}
		// From the last refusal: the node's run of breaches ends before
		// the next resend.
		rs.timer.Reset(rs.delay(f.GetError().GetCode()))
	case f.Id != "" && f.Id == rs.inflight && (answer || f.GetRoomJoined() != nil):
		rs.moved = true
		rs.next()
	case f.GetRoomJoined() != nil || f.GetError().GetCode() == chatcodes.CodeAlreadyInRoom:
		rs.flush() // a room may be joined now
	}
	return true, failed
}

// delay is the wait before the next round after a refusal with code.
func (rs *resender) delay(code string) time.Duration {
	d := rs.wait.Delay(rs.rounds)
	if code == chatcodes.CodeRateLimited {
		d = max(d, breachGap)
	}
	return d
}

// C delivers when the frames due are to go again.
func (rs *resender) C() <-chan time.Time { return rs.timer.C }

// fired starts a round, once C has delivered, unless the frame resent
// last is still unanswered (a refusal of a frame sent before it restarted
// the wait): its answer moves the resend on, and one frame at a time is
// out.
func (rs *resender) fired() {
	if rs.inflight != "" {
		return
	}
	rs.moved = false
	rs.next()
}

// next sends the first frame due, or ends the hold if none is: then every
// message still waiting is behind its room's join.
func (rs *resender) next() {
	f := rs.rec.nextDue()
	if f == nil {
		rs.held, rs.inflight, rs.rounds = false, "", 0
		return
	}
	rs.inflight = f.Id
	if f.GetJoinRoom() == nil {
		rs.sent(f.Id)
	}
	rs.out.put(f) // a failed send ends the connection, and the resender with it
}

// stop stops the timer.
func (rs *resender) stop() { rs.timer.Stop() }
