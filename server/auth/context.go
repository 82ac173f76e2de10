package auth

import (
	"context"

	"github.com/tertulia/tertulia/server/hub"
)

type identityKey struct{}

// NewContext returns ctx carrying who, the authenticated caller.
func NewContext(ctx context.Context, who hub.Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, who)
}

// FromContext returns the caller stored by NewContext, if any.
func FromContext(ctx context.Context) (hub.Identity, bool) {
	who, ok := ctx.Value(identityKey{}).(hub.Identity)
	return who, ok
}
