package hub

import (
	"context"
	"sync"
	"time"

	"github.com/tertulia/tertulia/server/i18n"
)

// Identity is who a session speaks for.
type Identity struct {
	UserID string
	Name   string
	Admin  bool
	Guest  bool
	// Locale is the token's locale claim, and AcceptLanguage the client's
	// Accept-Language (WebSocket handshake, gRPC metadata): the session's
	// texts are in the first language the server has (see i18n.Match).
	Locale         string
	AcceptLanguage string
	// Expires is the token's exp: the session ends then, after the leeway,
	// unless refreshed (see expiry.go). Zero for guests: no expiry.
	Expires time.Time
}

// Session is one client connection attached to the hub. Its methods are safe
// for concurrent use; Handle is meant to be called from the connection's one
// reader goroutine so that a client's frames are carried out in order.
type Session struct {
	hub *Hub
	id  string
	who Identity
	t   Transport
	enc Encoder
	// lang is the language of the session's texts, picked at Connect.
	lang i18n.Lang
	life lifetime   // when the session ends for its token
	ops  sync.Mutex // serialises the client's commands with moderation (kicks)

	mu       sync.Mutex // protects the fields below
	writeFn  func()     // s.write, made once: `go s.write()` would allocate a closure per start
	queue    [][]byte   // frames waiting for the writer
	spare    [][]byte   // the writer's previous batch, reused as the next queue
	queued   int        // bytes in queue
	writing  bool       // a writer goroutine is running
	held     bool       // not yet welcomed: frames wait, no writer starts
	closing  *Disconnect
	ended    DisconnectCode // why the server ended the session; 0 while it has not
	closed   bool
	rooms    map[string]struct{}
	detached bool
}

// ID is the connection id, unique in the cluster.
func (s *Session) ID() string { return s.id }

// Identity is the user this session speaks for.
func (s *Session) Identity() Identity { return s.who }

func (s *Session) conn() Conn { return Conn{ID: s.id, User: s.who.UserID, Name: s.who.Name} }

// enqueue adds one frame for the writer without waiting. A session whose queue
// would pass its bounds is disconnected as slow: the hub never waits on it.
func (s *Session) enqueue(b []byte) {
	s.mu.Lock()
	if s.closed || s.closing != nil {
		s.mu.Unlock()
		return
	}
	cfg := &s.hub.cfg
	if len(s.queue) >= cfg.QueueFrames || s.queued+len(b) > cfg.QueueBytes {
		s.closed = true
		s.ended = DisconnectSlow
		s.queue, s.queued = nil, 0
		s.mu.Unlock()
		s.hub.metrics.SlowDisconnects.Add(1)
		s.hub.log.Warn("disconnecting slow consumer", "conn", s.id, "user", s.who.UserID)
		// Close may take a moment on some transports; the caller is fanning out.
		go s.t.Close(disconnectSlow)
		return
	}
	s.queue = append(s.queue, b)
	s.queued += len(b)
	s.startWriterLocked()
}

// welcome puts b, the session's first frame, ahead of everything queued
// while it was being attached, and lets the writer go. Until then a lobby
// event published by another connection could have reached the client
// before its own welcome.
func (s *Session) welcome(b []byte) {
	s.mu.Lock()
	s.held = false
	if s.closed || s.closing != nil {
		s.mu.Unlock()
		return
	}
	if b != nil {
		s.queue = append(s.queue, nil)
		copy(s.queue[1:], s.queue)
		s.queue[0] = b
		s.queued += len(b)
	}
	s.startWriterLocked()
}

// startWriterLocked starts the writer unless one runs or the session is
// held, and unlocks s.mu.
func (s *Session) startWriterLocked() {
	start := !s.writing && !s.held
	if start {
		s.writing = true
		if s.writeFn == nil {
			s.writeFn = s.write
		}
	}
	write := s.writeFn
	s.mu.Unlock()
	if start {
		// The writer exists only while frames wait, so an idle session holds
		// no goroutine, and everything queued meanwhile goes out as one batch.
		// Starting it allocates nothing: a func value called without
		// arguments needs no closure, where `go s.write()` allocated one per
		// recipient of every fan-out, and the allocations made the fan-out
		// loop trigger GC work and give up its processor halfway through.
		go write()
	}
}

// write drains the queue in batches until it is empty.
func (s *Session) write() {
	for {
		s.mu.Lock()
		batch := s.queue
		if len(batch) == 0 || s.closed {
			s.writing = false
			d := s.closing
			if d != nil && !s.closed {
				s.closed = true
			} else {
				d = nil
			}
			s.mu.Unlock()
			if d != nil {
				s.t.Close(*d)
			}
			return
		}
		s.queue, s.spare = s.spare[:0], nil
		s.queued = 0
		s.mu.Unlock()

		err := s.t.Write(batch)
		clear(batch) // let the shared frames go
		s.mu.Lock()
		s.spare = batch[:0]
		s.mu.Unlock()
		if err != nil {
			s.mu.Lock()
			s.closed = true
			s.ended = DisconnectWriteError
			s.queue, s.queued = nil, 0
			s.writing = false
			s.mu.Unlock()
			s.t.Close(Disconnect{Code: DisconnectWriteError, Reason: err.Error()})
			return
		}
	}
}

// disconnect ends the session after what is queued has been written.
func (s *Session) disconnect(d Disconnect) {
	s.mu.Lock()
	if s.closed || s.closing != nil {
		s.mu.Unlock()
		return
	}
	s.closing = &d
	s.ended = d.Code
	if s.writing {
		s.mu.Unlock()
		return // the writer closes the transport once it has drained the queue
	}
	s.closed = true
	s.mu.Unlock()
	s.t.Close(d)
}

// Finish ends the session as the client asked, once what is already queued
// for it has been written: a client that half-closes still gets the answers
// to its last frames. The transport's Close is called with DisconnectDone.
func (s *Session) Finish() {
	s.disconnect(Disconnect{Code: DisconnectDone, Reason: "client done"})
}

// send encodes ev for this session alone, in its language, and queues it.
func (s *Session) send(ev *Event) {
	b, err := s.enc.Encode(s.hub.localize(ev, s.lang))
	if err != nil {
		s.hub.log.Error("encode event", "kind", ev.Kind.String(), "err", err)
		return
	}
	s.enqueue(b)
}

// sendError tells the session that the frame with id could not be carried out.
func (s *Session) sendError(id string, err *Error) {
	s.send(&Event{Kind: KindError, Time: s.hub.now(), ID: id, Message: err.MessageIn(s.hub.cfg.Texts, s.lang), Code: err.Code})
}

// Close detaches the session from the hub: it leaves its rooms, and the user's
// presence is updated cluster-wide. Transports call it once their connection
// has ended, whoever ended it. It is safe to call more than once.
func (s *Session) Close(ctx context.Context) {
	s.mu.Lock()
	if s.detached {
		s.mu.Unlock()
		return
	}
	s.detached = true
	reason := s.ended
	s.closed = true
	s.queue, s.queued = nil, 0
	rooms := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.rooms = nil
	s.mu.Unlock()
	s.stopExpiry()
	s.hub.detach(ctx, s, rooms, reason)
}
