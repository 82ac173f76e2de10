package node

import (
	"context"
	"net"
	"net/netip"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/grpcapi"
	"github.com/tertulia/tertulia/server/logs"
	"github.com/tertulia/tertulia/server/metrics"
)

// DefaultTrustedProxies are the peers whose relayed browser address a node
// believes when Config.TrustedProxies is nil: loopback, where `tertulia
// bridge` runs beside the node.
var DefaultTrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// relayedPeer makes a Connect stream's peer the browser that a trusted
// bridge names in grpcapi.ClientIPMetadata, so that the session counts
// against the browser's address. Only on the gRPC port: gRPC-Web (on the
// HTTP port) turns a browser's own headers into metadata, and a browser
// behind a proxy on this host would come from a trusted address.
func (n *Node) relayedPeer(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if info.FullMethod == chatv1.ChatService_Connect_FullMethodName && transportOf(ss.Context()) == metrics.GRPC {
		if ctx, ok := relayed(ss.Context(), n.cfg.TrustedProxies); ok {
			ss = logs.StreamWithContext(ctx, ss)
		}
	}
	return next(srv, ss)
}

// relayed is ctx with the browser's address as its peer, if the peer is in
// trusted and names one.
func relayed(ctx context.Context, trusted []netip.Prefix) (context.Context, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ctx, false
	}
	from, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil || !slices.ContainsFunc(trusted, func(t netip.Prefix) bool { return t.Contains(from.Addr().Unmap()) }) {
		return ctx, false
	}
	vals := metadata.ValueFromIncomingContext(ctx, grpcapi.ClientIPMetadata)
	if len(vals) != 1 {
		return ctx, false
	}
	client, err := netip.ParseAddr(vals[0])
	if err != nil {
		return ctx, false
	}
	relayedPeer := *p
	relayedPeer.Addr = &net.TCPAddr{IP: client.Unmap().AsSlice()}
	return peer.NewContext(ctx, &relayedPeer), true
}
