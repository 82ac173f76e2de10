package auth

import (
	"errors"

	"github.com/tertulia/tertulia/server/hub"
)

// ErrTokenRequired is returned for a session without a token where
// anonymous guests are not allowed.
var ErrTokenRequired = errors.New("token required")

// Gate decides who may open a chat session.
type Gate struct {
	Auth *Authenticator
	// AllowAnonymous lets sessions without a token in, as guests.
	AllowAnonymous bool
}

// Session returns the identity for a session presenting token, which may
// be empty. Every transport uses it, so that all of them admit the same.
func (g Gate) Session(token string) (hub.Identity, error) {
	if token != "" {
		return g.Auth.Verify(token)
	}
	if !g.AllowAnonymous {
		return hub.Identity{}, ErrTokenRequired
	}
	id := hub.NewGuestID()
	return hub.Identity{UserID: id, Name: id, Guest: true}, nil
}
