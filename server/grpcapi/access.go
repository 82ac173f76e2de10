package grpcapi

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
)

// Outside dev mode who is online, which rooms exist and what they say are
// not public (DESIGN.md, "Access, sessions, moderation"): every unary
// ChatService call (stats, rooms, users, members, history, broadcast) and
// server reflection need a valid token. Health checks stay open, for load
// balancers; Connect has its own gate (StreamAuth).

// chatPrefix starts the full method name of every ChatService RPC.
const chatPrefix = "/chat.v1.ChatService/"

// reflectionPrefix starts the full method names of both reflection
// services, v1 and v1alpha.
const reflectionPrefix = "/grpc.reflection."

// errTokenForReads is the refusal of a read without a token.
var errTokenForReads = status.Error(codes.Unauthenticated, "a token is required: send \"authorization: Bearer <token>\"")

// UnaryReads refuses unary ChatService calls that carry no valid token when
// required is set (outside dev mode). Chain it after UnaryAuth, which puts
// the caller's identity in the context.
func UnaryReads(required bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if required && strings.HasPrefix(info.FullMethod, chatPrefix) {
			if _, ok := auth.FromContext(ctx); !ok {
				return nil, errTokenForReads
			}
		}
		return next(ctx, req)
	}
}

// StreamReads refuses server reflection without a valid token, checked with
// a, when required is set (outside dev mode): the service list is the map of
// what a client may call.
func StreamReads(a *auth.Authenticator, required bool) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		if !required || !strings.HasPrefix(info.FullMethod, reflectionPrefix) {
			return next(srv, ss)
		}
		tok, ok := bearer(ss.Context())
		if !ok {
			return status.Error(codes.Unauthenticated, "authorization must be \"Bearer <token>\"")
		}
		if tok == "" {
			return errTokenForReads
		}
		if _, err := a.Verify(tok); err != nil {
			return status.Error(codes.Unauthenticated, err.Error())
		}
		return next(srv, ss)
	}
}

// MayRead refuses, with PermissionDenied, a unary call about room (its
// history, its members, a broadcast to it) from a caller who may not join
// it, and a bad room name with InvalidArgument. A caller without a token,
// as dev mode lets through, is judged as a guest.
func (s *ChatService) MayRead(ctx context.Context, room string) error {
	name, err := hub.RoomName(room) // judged as the server spells it
	if err == nil {
		err = s.hub.Namespaces().MayJoin(caller(ctx), name)
	}
	if err != nil {
		return statusFromError(err)
	}
	return nil
}

// caller is who made a unary call: the token's identity, or a guest for a
// call without one (as dev mode lets through).
func caller(ctx context.Context) hub.Identity {
	if who, ok := auth.FromContext(ctx); ok {
		return who
	}
	return hub.Identity{Guest: true}
}
