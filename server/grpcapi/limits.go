package grpcapi

import (
	"context"
	"net"

	"google.golang.org/grpc/peer"

	"github.com/tertulia/tertulia/server/hub"
)

// ClientIPMetadata is the metadata in which a WebSocket bridge apart from
// the node (bridge.Remote) names the address of the browser it relays, so
// that the node counts the session against that address's limit, not the
// bridge's. The node believes it only on its gRPC port and from a trusted
// proxy (node.Config.TrustedProxies).
const ClientIPMetadata = "x-tertulia-client-ip"

// withPeerIP tells the hub which IP address a session comes from, for its
// per-IP connection count: the stream's peer, which grpc-go sets for gRPC
// and gRPC-Web, the in-process WebSocket bridge sets for its browsers, and
// the node sets to the browser a trusted bridge names (ClientIPMetadata).
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
