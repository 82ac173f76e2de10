package grpcapi

import (
	"context"
	"errors"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
)

// withPeerIP tells the hub which IP address a session comes from, for its
// per-IP connection count: the stream's peer, which grpc-go sets for gRPC
// and gRPC-Web and the WebSocket bridge sets for its browsers.
func withPeerIP(ctx context.Context) context.Context {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ctx
	}
	host := p.Addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return hub.WithPeerIP(ctx, host)
}

// refusal maps the hub's refusal of a session over a connection limit onto
// ResourceExhausted, and of a banned user onto PermissionDenied with the
// reason "banned" (see chatv1.ReasonOf); ok is false for any other error.
func refusal(err error) (st error, ok bool) {
	var he *hub.Error
	if errors.As(err, &he) && he.Code == hub.CodeTooManyConns {
		return status.Error(codes.ResourceExhausted, he.Message), true
	}
	var banned *hub.BannedError
	if errors.As(err, &banned) {
		return chatv1.ReasonStatus(codes.PermissionDenied, banned.Error(), chatv1.ReasonBanned), true
	}
	return nil, false
}
