package node

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// keepUserTimeout sets TCP_USER_TIMEOUT on c, as grpc-go does on the
// connections it accepts when keepalive is on: data the peer does not
// acknowledge within d ends the connection, instead of the kernel's
// retransmissions for many minutes.
func keepUserTimeout(c net.Conn, d time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
	})
}
