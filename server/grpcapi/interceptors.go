package grpcapi

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
)

// bearer returns the token of the "authorization: Bearer <jwt>" metadata,
// "" if there is none, and ok false if the header is there but malformed.
func bearer(ctx context.Context) (token string, ok bool) {
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		return "", true
	}
	scheme, tok, found := strings.Cut(vals[0], " ")
	if !found || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// UnaryAuth authenticates unary calls. A call that presents a token must
// present a valid one; a call without one goes on with no identity, and the
// methods that need one refuse it.
func UnaryAuth(a *auth.Authenticator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		tok, ok := bearer(ctx)
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "authorization must be \"Bearer <token>\"")
		}
		if tok != "" {
			who, err := a.Verify(tok)
			if err != nil {
				return nil, status.Error(codes.Unauthenticated, err.Error())
			}
			ctx = auth.NewContext(ctx, who)
		}
		return next(ctx, req)
	}
}

// StreamAuth authenticates Connect streams through gate; other streams
// (health, reflection) pass untouched.
func StreamAuth(gate auth.Gate) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		if info.FullMethod != chatv1.ChatService_Connect_FullMethodName {
			return next(srv, ss)
		}
		tok, ok := bearer(ss.Context())
		if !ok {
			return status.Error(codes.Unauthenticated, "authorization must be \"Bearer <token>\"")
		}
		who, err := gate.Session(tok)
		if err != nil {
			return status.Error(codes.Unauthenticated, err.Error())
		}
		return next(srv, &identityStream{ServerStream: ss, ctx: auth.NewContext(ss.Context(), who)})
	}
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }
