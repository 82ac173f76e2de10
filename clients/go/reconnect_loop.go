package client

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// This file is a Reconnecting session's connection loop: it opens one
// connection after another (run, open), serves each (serve: it makes the
// connection current for the sending methods, takes up where the last one
// left off, and moves the resend on as the server answers), and hands the
// server's frames to the reader of Events (emit, hand). Only its goroutine
// writes to Events.

// welcomeTimeout bounds the wait for a new connection's welcome.
const welcomeTimeout = 10 * time.Second

// run connects, serves the connection until it ends, waits and connects
// again, until ctx ends or the server refuses the client.
func (r *Reconnecting) run(ctx context.Context) {
	defer close(r.done)
	defer close(r.events)
	next, failed, connected := 0, 0, false
	for {
		addr := r.addrs[next]
		c, s, welcome, err := r.open(ctx, addr)
		if err == nil {
			failed = 0
			if connected {
				r.mu.Lock()
				r.reconnects++
				r.mu.Unlock()
			}
			connected = true
			err = r.serve(ctx, addr, s, welcome)
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

// open connects to addr and waits for the welcome, which it observes; it
// returns the welcome if it is to be handed over (serve does, once the
// session takes frames).
func (r *Reconnecting) open(ctx context.Context, addr string) (*Client, *Session, *chatv1.ServerFrame, error) {
	c, err := Dial(addr, r.opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := c.Connect(ctx)
	if err != nil {
		return c, nil, nil, err
	}
	t := time.NewTimer(welcomeTimeout)
	defer t.Stop()
	select {
	case f, ok := <-s.Events():
		if ok && f.GetSystem() != nil {
			if !r.rec.Observe(f) {
				f = nil
			}
			return c, s, f, nil
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
	return c, nil, nil, err
}

// closeAndDrain closes s and reads what is left of its events, so that its
// reading goroutine, which may be waiting to hand over a frame, ends.
func closeAndDrain(s *Session) {
	s.Close()
	for range s.Events() {
	}
}

// serve makes s the current session, takes up where the last one left off
// (rooms, missed messages, unacknowledged frames), hands over its welcome
// (unless nil) and forwards its frames until it ends; it returns why it
// ended. The welcome goes only now, so that whoever acts on it finds the
// session taking frames, not a Join held for the next connection. Frames the server refuses for now
// are sent again on s (resender), which goes with s, since the next
// connection sends them anyway (resender.flush). A send that fails ends
// the session: its end is seen below.
func (r *Reconnecting) serve(ctx context.Context, addr string, s *Session, welcome *chatv1.ServerFrame) error {
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
	if welcome != nil && !r.hand(ctx, welcome) {
		return ctx.Err()
	}
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
