package grpcapi

import (
	"context"
	"net"
	"net/netip"
	"slices"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/tertulia/tertulia/server/hub"
)

// ClientIPMetadata is the metadata in which a WebSocket bridge apart from
// the node (bridge.Remote) names the address of the browser it relays, so
// that the node counts the session against that address's limit, not the
// bridge's. It is believed only from a trusted proxy (TrustedProxies).
const ClientIPMetadata = "x-tertulia-client-ip"

// DefaultTrustedProxies are the peers whose ClientIPMetadata a node believes
// when it is given none: loopback, where `tertulia bridge` runs beside the
// node.
var DefaultTrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// withPeerIP tells the hub which IP address a session comes from, for its
// per-IP connection count: the stream's peer, which grpc-go sets for gRPC
// and gRPC-Web and the in-process WebSocket bridge sets for its browsers;
// or, if the peer is a trusted proxy, the browser's address it names.
func withPeerIP(ctx context.Context, trusted []netip.Prefix) context.Context {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ctx
	}
	host := p.Addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if relayed, ok := relayedIP(ctx, host, trusted); ok {
		host = relayed
	}
	return hub.WithPeerIP(ctx, host)
}

// relayedIP is the client address a trusted proxy at peerHost names in the
// stream's metadata, if it is one and names one.
func relayedIP(ctx context.Context, peerHost string, trusted []netip.Prefix) (string, bool) {
	ip, err := netip.ParseAddr(peerHost)
	if err != nil || !slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(ip.Unmap()) }) {
		return "", false
	}
	vals := metadata.ValueFromIncomingContext(ctx, ClientIPMetadata)
	if len(vals) != 1 {
		return "", false
	}
	client, err := netip.ParseAddr(vals[0])
	if err != nil {
		return "", false
	}
	return client.Unmap().String(), true
}
