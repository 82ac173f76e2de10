package hub

import (
	"slices"
	"sync"
	"time"
)

// A session lasts as long as its token (DESIGN.md, "Access, sessions,
// moderation"): it ends TokenLeeway after the token's exp, unless the client
// hands it a new token for the same user first (a refresh). Each session has
// one timer, armed at Open and moved by each refresh; there is no loop that
// looks at sessions. Guests, whose identity has no expiry, never expire.

// DefaultTokenLeeway is the clock skew allowed past a token's exp, at
// connect (the authenticator's leeway) and during a session.
const DefaultTokenLeeway = 30 * time.Second

// TokenVerifier checks a token presented during a session (a refresh)
// exactly as one presented at connect. *auth.Authenticator implements it.
type TokenVerifier interface {
	Verify(token string) (Identity, error)
}

// disconnectExpired ends a session whose token has expired.
var disconnectExpired = Disconnect{Code: DisconnectExpired, Reason: "token expired"}

// lifetime is when a session ends for its token.
type lifetime struct {
	mu      sync.Mutex // protects expires, timer and over
	expires time.Time  // the token's exp; zero: never
	timer   *time.Timer
	over    bool // the session is closed: no timer is armed again
}

// leeway is the time a session outlives its token's exp.
func (h *Hub) leeway() time.Duration {
	switch l := h.cfg.TokenLeeway; {
	case l < 0:
		return 0
	case l == 0:
		return DefaultTokenLeeway
	default:
		return l
	}
}

// expireAt arms the session's timer for a token expiring at exp, or moves
// it there. A zero exp leaves the session without expiry.
func (s *Session) expireAt(exp time.Time) {
	if exp.IsZero() {
		return
	}
	l := &s.life
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.over {
		return
	}
	l.expires = exp
	d := exp.Add(s.hub.leeway()).Sub(s.hub.cfg.Now())
	if l.timer == nil {
		l.timer = time.AfterFunc(d, s.expire)
		return
	}
	l.timer.Reset(d)
}

// expire ends the session if its token has expired: a refresh may have
// moved the deadline while the timer fired.
func (s *Session) expire() {
	l := &s.life
	l.mu.Lock()
	late := !l.over && !s.hub.cfg.Now().Before(l.expires.Add(s.hub.leeway()))
	l.mu.Unlock()
	if late {
		s.hub.log.Info("session expired", "conn", s.id, "user", s.who.UserID)
		s.out.drain(disconnectExpired)
	}
}

// stopExpiry disarms the timer for good; Close calls it.
func (s *Session) stopExpiry() {
	l := &s.life
	l.mu.Lock()
	defer l.mu.Unlock()
	l.over = true
	if l.timer != nil {
		l.timer.Stop()
	}
}

// refresh moves the session's end to cmd.Token's expiry. The token must
// verify and grant what the session's does: the same user, admin role and
// rooms claim. The session's rights are not changed on the way: a token
// with other rights is refused, and the client reconnects with it.
func (s *Session) refresh(cmd Command) *Error {
	v := s.hub.cfg.Tokens
	if v == nil {
		return errorf(CodeInvalidToken, "this server takes no tokens")
	}
	if s.who.Guest {
		return errorf(CodeForbidden, "a guest session has no token to refresh")
	}
	who, err := v.Verify(cmd.Token)
	if err != nil {
		return errorf(CodeInvalidToken, "refresh refused: %s", err.Error())
	}
	if who.UserID != s.who.UserID {
		return errorf(CodeForbidden, "refresh refused: the token is for another user")
	}
	if who.Admin != s.who.Admin || !sameRooms(who.Rooms, s.who.Rooms) {
		return errorf(CodeForbidden, "refresh refused: the token's rights changed: reconnect")
	}
	s.expireAt(who.Expires)
	s.send(&Event{Kind: KindRefreshed, Time: s.hub.now(), ID: cmd.ID, ExpiresAt: who.Expires})
	return nil
}

// sameRooms reports whether two rooms claims list the same rooms and
// patterns, in any order.
func sameRooms(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
