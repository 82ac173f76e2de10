package client

import (
	"context"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// This file is a Reconnecting session's sending side: the methods that
// record what the caller asks for (Recovery) and put its frames on the
// current connection's outbox, and the wait for their writes.

// Join joins room now, and again on every new connection until Leave.
// Between connections it only records the room. Messages to room wait for
// the join's room_joined, or its already_in_room if the connection is in
// the room (see Reconnecting). After an administrator kicked the user out
// of room, it is a fresh join. It returns once the join_room is written,
// or its write failed (the room is joined again on the next connection).
// ctx bounds only the wait for the write; see Reconnecting.
func (r *Reconnecting) Join(ctx context.Context, room string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	f := r.rec.Join(room, 0)
	if r.out == nil {
		r.mu.Unlock()
		return nil
	}
	r.resend.clear(room)
	written := r.out.send(f)
	r.mu.Unlock()
	_, err := awaitWrite(ctx, written)
	return err
}

// Leave leaves room, and stops joining it on new connections. Messages to
// room waiting for its join go first, right behind the join, so that they
// are taken before the leave; but while frames refused for now are sent
// again one at a time, they go after it, and the server answers
// not_in_room. If that join was itself refused for now and is due again,
// or sent again and not answered yet, they are not sent: each is answered
// on Events by an error frame with its id, code not_in_room and a text
// saying that room was left before its join was accepted (as the pages
// do). The leave_room carries an id, and the not_in_room answering it (a
// join on its way refused after all) is not on Events, as on the pages.
// No leave_room is sent unless the server may hold the connection in room
// (Recovery.Leave): when every join of it by Join on the connection was
// refused for now, or the connection left it since its last join (by Join
// or by a join_room frame sent with SendFrame), or was kicked out of it or
// refused it for good since its last Join, the server does not hold the
// connection in room, so there is nothing to leave. Of a room joined only
// by a join_room frame, kicks and refusals are not seen: only a Leave is.
// It returns once the leave_room is written, or its write failed (the
// room is not joined on the next connection). ctx bounds only the wait
// for the write; see Reconnecting.
func (r *Reconnecting) Leave(ctx context.Context, room string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	due, joinID, in := r.rec.leave(room)
	if r.out == nil {
		r.mu.Unlock()
		return nil
	}
	r.resend.clear(room)
	if due || r.resend.resending(joinID) {
		r.resend.left(room)
	}
	r.resend.flush()
	if !in {
		r.mu.Unlock()
		return nil
	}
	r.leaves++
	written := r.out.send(r.resend.leaveFrame(room))
	r.mu.Unlock()
	_, err := awaitWrite(ctx, written)
	return err
}

// SendFrame sends f on the current connection. A message or private
// message is given an id if it has none, kept until its ack (Recovery.Track)
// and sent again, with the same id, on each new connection; between
// connections, while frames refused for now wait to go again, or while
// its room's join has not been accepted on the connection, it waits for
// its turn. Any other frame is refused with ErrReconnecting between
// connections. A frame sent now returns once written (or once its write
// failed: a message then goes again on the next connection, and SendFrame
// returns nil), as Session.SendFrame does; one that waits returns at once.
// ctx bounds only the wait for the write; see Reconnecting.
func (r *Reconnecting) SendFrame(ctx context.Context, f *chatv1.ClientFrame) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	kept := f.GetMessage() != nil || f.GetPrivateMessage() != nil
	if kept || r.out != nil {
		f = r.rec.Track(f) // a join_room frame refused here is not noted
	}
	switch {
	case r.out == nil && kept:
		r.mu.Unlock()
		return nil
	case r.out == nil:
		r.mu.Unlock()
		return ErrReconnecting
	case !kept:
		written := r.out.send(f)
		r.mu.Unlock()
		_, err := awaitWrite(ctx, written)
		return err
	}
	written := r.resend.add(f)
	r.mu.Unlock()
	if written == nil {
		return nil
	}
	if done, err := awaitWrite(ctx, written); !done {
		return err
	}
	return nil // a failed write ends the connection; the message goes on the next
}

// Send posts message to room, or to everyone connected if room is empty,
// under an id of its own: it arrives once, whatever connections come and
// go, and its ack (with that id) comes on Events. It waits as SendFrame
// does. ctx bounds only the wait for the write; see Reconnecting.
func (r *Reconnecting) Send(ctx context.Context, room, message string) error {
	return r.SendFrame(ctx, &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: room, Message: message}}})
}

// Private sends message to every connection of user, as Send does.
// ctx bounds only the wait for the write; see Reconnecting.
func (r *Reconnecting) Private(ctx context.Context, user, message string) error {
	return r.SendFrame(ctx, &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_PrivateMessage{PrivateMessage: &chatv1.SendPrivateMessage{TargetUser: user, Message: message}}})
}

// awaitWrite waits for a frame's write (outbox.send): it returns true and
// the write's result, or false and ctx.Err() if ctx ends first (a write
// done by then wins). The frame stays queued: the outbox answers into
// written, which has room for the answer, whether anybody waits or not.
func awaitWrite(ctx context.Context, written <-chan error) (done bool, err error) {
	select {
	case err := <-written:
		return true, err
	case <-ctx.Done():
	}
	select {
	case err := <-written:
		return true, err
	default:
		return false, ctx.Err()
	}
}
