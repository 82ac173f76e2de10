package client

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// This file is a Reconnecting session's state and lifetime;
// reconnect_send.go is its sending side, reconnect_loop.go its connection
// loop, and resend.go and outbox.go what that loop runs on each
// connection.

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
// administrator's kick out of a room (the session's own room_left with
// kicked and yours set; not the copies about the user's other sessions)
// ends its membership as Leave would: it is not joined again on the next
// connection, and the messages waiting for its join fail with code
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
// Its sending methods (Join, Leave, SendFrame, Send, Private) take a ctx
// that bounds only the caller's wait for the write, never what the call
// does. A call whose ctx has already ended does nothing and returns
// ctx.Err(). Otherwise the call does what it asks for (the room is joined
// or left, the frame queued) and returns once its frame is written, or at
// once if the call does not wait (between connections, or for a message
// that waits its turn); if ctx ends before the write, it returns
// ctx.Err(), and what it asked for stands: the frame stays queued and goes
// when the connection takes it, unless the connection ends first; then
// what Reconnecting keeps across connections goes on the next one (a
// joined room's join, a message that awaits its ack, which keeps its id
// and its place and gets its one last answer on Events as if the call had
// waited), and any other frame is not sent.
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

// Pending is how many messages await their ack.
func (r *Reconnecting) Pending() int { return len(r.rec.Pending()) }
