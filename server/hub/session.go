package hub

import (
	"context"
	"slices"
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
	// Rooms is the token's rooms claim: room names and patterns that open
	// private namespaces (see Namespaces.MayJoin).
	Rooms []string
	// Locale is the token's locale claim, and AcceptLanguage the client's
	// Accept-Language (WebSocket handshake, gRPC metadata): the session's
	// texts are in the first language the server has (see i18n.Match).
	Locale         string
	AcceptLanguage string
	// Expires is the token's exp: the session ends then, after the leeway,
	// unless refreshed (see expiry.go). Zero for guests: no expiry.
	Expires time.Time
}

// Session is one client connection open on the hub. Its methods are safe
// for concurrent use; Handle is meant to be called from the connection's one
// reader goroutine so that a client's frames are carried out in order.
type Session struct {
	// What a fan-out reads of each member comes first, together, so that
	// it spans few cache lines: id, enc, lang, out.
	hub *Hub
	id  string
	enc Encoder
	// lang is the language of the session's texts, picked at Open.
	lang i18n.Lang
	out  outbox // what is on its way to the client
	who  Identity
	lim  *sessionLimits // rate buckets and admission; set by Open
	life lifetime       // when the session ends for its token
	ops  sync.Mutex     // serialises the client's commands with moderation (kicks)

	mu     sync.Mutex // protects rooms and closed
	rooms  roomSet
	closed bool // Close has been called

	catch catchup // live events held back while a log is read
	// inboxAt is the inbox position at connect: the private messages after
	// it are sent live. Set at connect, read by the reader goroutine only.
	inboxAt   Position
	inboxRead bool // inboxAt was read; if not, a recovery may repeat live messages
}

// ID is the connection id, unique in the cluster.
func (s *Session) ID() string { return s.id }

// Identity is the user this session speaks for.
func (s *Session) Identity() Identity { return s.who }

func (s *Session) presence() PresenceRecord {
	return PresenceRecord{ID: s.id, User: s.who.UserID, Name: s.who.Name}
}

// enqueue adds one frame for the client without waiting. A session whose
// queue would pass its bounds is disconnected as slow: the hub never waits
// on it.
func (s *Session) enqueue(b []byte) {
	if s.out.push(b) {
		return
	}
	s.closeSlow()
}

// closeSlow disconnects s, whose queue overflowed, as slow.
func (s *Session) closeSlow() {
	s.hub.metrics.SlowDisconnects.Add(1)
	s.hub.log.Warn("disconnecting slow consumer", "conn", s.id, "user", s.who.UserID)
	// Close may take a moment on some transports; the caller is fanning out.
	go s.out.t.Close(disconnectSlow)
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

// Drain ends the session as the client asked, once what is already queued
// for it has been written: a client that half-closes still gets the answers
// to its last frames. The transport's Close is called with DisconnectDone.
func (s *Session) Drain() {
	s.out.drain(Disconnect{Code: DisconnectDone, Reason: "client done"})
}

// Close takes the session out of the hub: it leaves its rooms, and the user's
// presence is updated cluster-wide. Transports call it once their connection
// has ended, whoever ended it. It is safe to call more than once.
func (s *Session) Close(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	rooms := s.rooms
	s.rooms = nil
	s.mu.Unlock()
	s.stopExpiry()
	reason := s.out.stop()
	s.hub.closeSession(ctx, s, rooms, reason)
}

// roomSet is the rooms a session is in, in the order it joined them. A
// slice, not a map: a session is in a few rooms (at most Config.MaxRooms),
// and a map of one room cost an idle session about 200 bytes more.
type roomSet []string

func (r roomSet) has(room string) bool { return slices.Contains(r, room) }

// remove takes room out of r and reports whether it was there.
func (r *roomSet) remove(room string) bool {
	i := slices.Index(*r, room)
	if i < 0 {
		return false
	}
	*r = slices.Delete(*r, i, i+1)
	return true
}
