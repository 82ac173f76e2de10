package grpcapi

import (
	"context"
	"errors"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

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
// ResourceExhausted; ok is false for any other error.
func refusal(err error) (st error, ok bool) {
	var he *hub.Error
	if errors.As(err, &he) && he.Code == hub.CodeTooManyConns {
		return status.Error(codes.ResourceExhausted, he.Message), true
	}
	return nil, false
}
