package grpcapi

import (
	"context"
	"errors"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"

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

// refusal is the status of the hub's refusal of a session: a banned user
// gets PermissionDenied with the reason "banned" (see chatv1.ReasonOf), a
// refusal with a code (a connection limit) the status of its code
// (statusFromError). ok is false for any other error.
func refusal(err error) (st error, ok bool) {
	var banned *hub.BannedError
	if errors.As(err, &banned) {
		return chatv1.ReasonStatus(codes.PermissionDenied, banned.Error(), chatv1.ReasonBanned), true
	}
	var he *hub.Error
	if errors.As(err, &he) {
		return statusFromError(he), true
	}
	return nil, false
}
