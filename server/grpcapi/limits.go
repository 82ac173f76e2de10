package grpcapi

import (
	"context"
	"net"

	"google.golang.org/grpc/peer"

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
