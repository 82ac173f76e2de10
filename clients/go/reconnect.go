package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// Reconnecting is a chat session that outlives its connections. When a
// connection ends for a reason worth another try (the node restarts and
// says Unavailable, the network drops, the node dies), it waits a random,
// growing time (see Backoff) and connects to the next of its addresses,
// round the list, until one answers; then it joins again the rooms it had
// joined, asking for what it missed there (join_room's since, from the
// last offset seen in each room), asks for the private messages it missed
// (recover_private), and sends again, with the same ids, the messages no
// ack has answered (the server delivers an id once). A message or join the
// server refuses for now (an error with code unavailable or rate_limited)
// is sent again on the same connection after a wait (Backoff; a second at
// least after rate_limited), and the messages sent meanwhile after it, in
// send order, one at a time, each after the ack of the one before: a
// backlog is worked off at the server's rate, never taken for a flood. One
// refused for good (any other code) is not sent again. A message to a room
// waits for that room's join (the first, or the join again on a new
// connection) to be accepted, since the server would refuse it with
// not_in_room before: if the join is refused for now, the room's messages
// go once it is, in send order; if it is refused for good (banned,
// forbidden, ...), each of them is answered on Events by an error frame
// with its id and the join's code and text, as are those sent to the room
// later on the connection, until it is joined again or left. An
// administrator's kick out of a room (the session's own room_left with kicked
// and yours set; not the copies about the user's other sessions) ends its membership as Leave would: it is not joined again on the
// next connection, and the messages waiting for its join fail with code
// not_in_room, unless a join of it is still to be answered (that join came
// after the kick: they wait for it). So messages to different
// rooms may overtake each other; those to one room keep their order. Each
// message gets one last answer on Events, after any refusals for now: its
// ack, or an error that refuses it for good. It gives up only when the
// server refuses the client itself (Unauthenticated, PermissionDenied), or
// when its context ends or Close is called.
//
// Events delivers the frames of every connection in order; each connection
// starts with its own welcome (a system frame with a new connection id),
// followed by the room_joined frames of the rooms joined again (recovered
// true when every missed message follows, false when some are beyond the
// history: reload those with GetHistory) and the missed messages. Missed
// private messages may come after live ones that arrived meanwhile: order
// them by offset.
//
// Its methods are safe for concurrent use.
type Reconnecting struct {
	addrs  []string
	opts   []Option
	wait   Backoff
	events chan *chatv1.ServerFrame
	cancel context.CancelFunc
	done   chan struct{} // closed when the connection loop has ended

	// mu protects the fields below. It is never held across a network
	// write: frames go through the current connection's outbox, in the
	// order they were put under mu, and a caller that waits for its
	// frame's write waits after letting go of mu, so a write the server
	// does not take never stops the connection's reader.
	mu         sync.Mutex
	out        *outbox   // writes the current connection's frames; nil between connections
	resend     *resender // the current connection's resends; nil between connections
	addr       string    // the current connection's address
	rec        *Recovery // rooms, positions and unacknowledged frames
	reconnects int       // connections opened after the first
	leaves     int       // leave_room frames Leave put on a connection's outbox
	err        error     // why the loop gave up
}

// ErrReconnecting is returned by the sending methods of a Reconnecting
// session between two connections. Nothing was sent: try again later.
var ErrReconnecting = errors.New("reconnecting: not connected")

// welcomeTimeout bounds the wait for a new connection's welcome.
const welcomeTimeout = 10 * time.Second

// Reconnect starts a session that connects to the first of addrs that
// answers and reconnects as Reconnecting says, with the options of Dial
// (WithToken, WithDialOptions, WithBackoff). It returns at once; the first
// frame on Events is the first connection's welcome. The session ends when
// ctx is done or Close is called.
func Reconnect(ctx context.Context, addrs []string, opts ...Option) (*Reconnecting, error) {
	if len(addrs) == 0 {
		return nil, errors.New("reconnect: no address")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	// A connection that goes silent (a peer gone without a word) is noticed
	// within a minute, as a node's own keepalive does; the node allows a
	// ping every 10s.
	opts = append([]Option{WithDialOptions(grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}))}, opts...)
	ctx, cancel := context.WithCancel(ctx)
	r := &Reconnecting{
		addrs: slices.Clone(addrs), opts: opts, wait: o.backoff,
		events: make(chan *chatv1.ServerFrame, eventBuffer), cancel: cancel, done: make(chan struct{}),
		rec: NewRecovery(),
	}
	go r.run(ctx)
	return r, nil
}

// Events delivers the server's frames, of one connection after another. It
// is closed when the session ends; Err then says why.
func (r *Reconnecting) Events() <-chan *chatv1.ServerFrame { return r.events }

// Err is why the session gave up (a status such as Unauthenticated), nil if
// its context ended or Close was called. Valid once Events is closed.
func (r *Reconnecting) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Addr is the address of the current connection, "" between connections.
func (r *Reconnecting) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Reconnects is how many connections were opened after the first.
func (r *Reconnecting) Reconnects() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reconnects
}

// Close ends the session and waits for its connection to close.
func (r *Reconnecting) Close() error {
	r.cancel()
	<-r.done
	return nil
}

// Join joins room now, and again on every new connection until Leave.
// Between connections it only records the room. Messages to room wait for
// the join's room_joined, or its already_in_room if the connection is in
// the room (see Reconnecting). After an administrator kicked the user out
// of room, it is a fresh join.
func (r *Reconnecting) Join(room string) error {
	r.mu.Lock()
	f := r.rec.Join(room, 0)
	if r.out == nil {
		r.mu.Unlock()
		return nil
	}
	r.resend.clear(room)
	written := r.out.send(f)
	r.mu.Unlock()
	return <-written
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
func (r *Reconnecting) Leave(room string) error {
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
	return <-written
}

// SendFrame sends f on the current connection. A message or private
// message is given an id if it has none, kept until its ack (Recovery.Track)
// and sent again, with the same id, on each new connection; between
// connections, while frames refused for now wait to go again, or while
// its room's join has not been accepted on the connection, it waits for
// its turn. Any other frame is refused with ErrReconnecting between
// connections. A frame sent now returns once written (or once its write
// failed: a message then goes again on the next connection), as
// Session.SendFrame does; one that waits returns at once.
func (r *Reconnecting) SendFrame(f *chatv1.ClientFrame) error {
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
		return <-written
	}
	written := r.resend.add(f)
	r.mu.Unlock()
	if written != nil {
		<-written // a failed write ends the connection; the message goes on the next
	}
	return nil
}

// Send posts message to room, or to everyone connected if room is empty,
// under an id of its own: it arrives once, whatever connections come and
// go, and its ack (with that id) comes on Events.
func (r *Reconnecting) Send(room, message string) error {
	return r.SendFrame(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: room, Message: message}}})
}

// Private sends message to every connection of user, as Send does.
func (r *Reconnecting) Private(user, message string) error {
	return r.SendFrame(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_PrivateMessage{PrivateMessage: &chatv1.SendPrivateMessage{TargetUser: user, Message: message}}})
}

// Pending is how many messages await their ack.
func (r *Reconnecting) Pending() int { return len(r.rec.Pending()) }

// run connects, serves the connection until it ends, waits and connects
// again, until ctx ends or the server refuses the client.
func (r *Reconnecting) run(ctx context.Context) {
	defer close(r.done)
	defer close(r.events)
	next, failed, connected := 0, 0, false
	for {
		addr := r.addrs[next]
		c, s, err := r.open(ctx, addr)
		if err == nil {
			failed = 0
			if connected {
				r.mu.Lock()
				r.reconnects++
				r.mu.Unlock()
			}
			connected = true
			err = r.serve(ctx, addr, s)
			c.Close()
		} else if c != nil {
			c.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if permanent(err) {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			return
		}
		// The node that went away may come back, but another is likelier
		// to answer now: try the next.
		next = (next + 1) % len(r.addrs)
		t := time.NewTimer(r.wait.Delay(failed))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		failed++
	}
}

// open connects to addr and waits for the welcome.
func (r *Reconnecting) open(ctx context.Context, addr string) (*Client, *Session, error) {
	c, err := Dial(addr, r.opts...)
	if err != nil {
		return nil, nil, err
	}
	s, err := c.Connect(ctx)
	if err != nil {
		return c, nil, err
	}
	t := time.NewTimer(welcomeTimeout)
	defer t.Stop()
	select {
	case f, ok := <-s.Events():
		if ok && f.GetSystem() != nil {
			r.emit(ctx, f)
			return c, s, nil
		}
		err = s.Err()
		if err == nil {
			err = fmt.Errorf("connect %s: no welcome", addr)
		}
	case <-t.C:
		err = status.Errorf(codes.DeadlineExceeded, "connect %s: no welcome within %v", addr, welcomeTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	closeAndDrain(s)
	return c, nil, err
}

// closeAndDrain closes s and reads what is left of its events, so that its
// reading goroutine, which may be waiting to hand over a frame, ends.
func closeAndDrain(s *Session) {
	s.Close()
	for range s.Events() {
	}
}

// serve makes s the current session, takes up where the last one left off
// (rooms, missed messages, unacknowledged frames) and forwards its frames
// until it ends; it returns why it ended. Frames the server refuses for now
// are sent again on s (resender), which goes with s, since the next
// connection sends them anyway (resender.flush). A send that fails ends
// the session: its end is seen below.
func (r *Reconnecting) serve(ctx context.Context, addr string, s *Session) error {
	out := newOutbox(s)
	resend := newResender(r.rec, out, r.wait)
	r.mu.Lock()
	r.out, r.addr, r.resend = out, addr, resend
	// The welcome was observed in open. A failed send ends the session:
	// its end is seen below.
	for _, f := range r.rec.rejoin() {
		out.put(f)
	}
	resend.flush() // what awaits its ack and is not behind its room's join
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		resend.stop()
		r.out, r.addr, r.resend = nil, "", nil
		failed := resend.takeFailed() // each message gets its answer
		r.mu.Unlock()
		closeAndDrain(s) // ends a write under way, so that the outbox closes
		out.close()
		r.handAll(ctx, failed)
	}()
	for {
		select {
		case f, ok := <-s.Events():
			if !ok {
				return s.Err()
			}
			// The resend moves on before f is handed over: whoever reads a
			// refusal finds the resend under way. A frame without an id
			// (other members' messages, presence) answers nothing: it
			// needs no mu, unless it is a kick, which fails messages
			// waiting to go.
			if f.Id == "" && !f.GetRoomLeft().GetKicked() {
				if !r.emit(ctx, f) {
					return ctx.Err()
				}
				continue
			}
			r.mu.Lock() // in order with SendFrame's sends
			fresh, failed := resend.observe(f)
			r.mu.Unlock()
			if fresh && !r.hand(ctx, f) || !r.handAll(ctx, failed) {
				return ctx.Err()
			}
		case <-resend.failedC():
			r.mu.Lock()
			failed := resend.takeFailed()
			r.mu.Unlock()
			if !r.handAll(ctx, failed) {
				return ctx.Err()
			}
		case <-resend.C():
			if ctx.Err() != nil { // closed meanwhile: send nothing more
				return ctx.Err()
			}
			r.mu.Lock()
			resend.fired()
			r.mu.Unlock()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// emit notes what f tells of positions and acks, and hands it to the
// reader of Events, unless ctx ends first. A message already seen (under
// another connection) is dropped.
func (r *Reconnecting) emit(ctx context.Context, f *chatv1.ServerFrame) bool {
	return !r.rec.Observe(f) || r.hand(ctx, f)
}

// hand hands f to the reader of Events, unless ctx ends first.
func (r *Reconnecting) hand(ctx context.Context, f *chatv1.ServerFrame) bool {
	select {
	case r.events <- f:
		return true
	case <-ctx.Done():
		return false
	}
}

// handAll hands fs to the reader of Events, in order, unless ctx ends
// first.
func (r *Reconnecting) handAll(ctx context.Context, fs []*chatv1.ServerFrame) bool {
	for _, f := range fs {
		if !r.hand(ctx, f) {
			return false
		}
	}
	return true
}

// permanent reports whether a connection that ended with err should not be
// tried again: the server refused the client itself, and will again.
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.Unimplemented:
		return true
	}
	return false
}
