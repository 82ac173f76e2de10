package bridge

import (
	"context"
	"net"
	"syscall"
	"time"
)

// Listen opens a TCP listener on addr for Listener to serve, with the TCP
// keepalives net.Listen gives each connection (probes after 15s idle,
// every 15s, 9 unanswered drop it), but set once, on the listening
// socket: Linux gives its options to every connection accepted from it.
// net.Listen sets them on each connection as it is accepted, four
// setsockopt calls of the dozen or so syscalls a WebSocket costs to set up.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{
		KeepAlive: -1, // not per connection: inherited from the listener
		Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			if cerr := rc.Control(func(fd uintptr) { err = setKeepAlive(int(fd)) }); cerr != nil {
				return cerr
			}
			return err
		},
	}
	return lc.Listen(ctx, "tcp", addr)
}

// The keepalive net.Listen gives a connection (net.KeepAliveConfig's
// defaults).
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 15 * time.Second
	keepAliveCount    = 9
)

// setKeepAlive turns TCP keepalives on for socket fd.
func setKeepAlive(fd int) error {
	for _, o := range []struct{ level, opt, value int }{
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(keepAliveIdle / time.Second)},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(keepAliveInterval / time.Second)},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount},
	} {
		if err := syscall.SetsockoptInt(fd, o.level, o.opt, o.value); err != nil {
			return err
		}
	}
	return nil
}
