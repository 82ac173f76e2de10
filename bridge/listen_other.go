//go:build !linux

package bridge

import (
	"context"
	"net"
)

// Listen opens a TCP listener on addr for Listener to serve, its
// connections with net.Listen's TCP keepalives. (On Linux they are set
// once, on the listening socket.)
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}
