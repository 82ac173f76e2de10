package node

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tertulia/tertulia/server/grpcapi"
)

// A connection the cap lets through keeps grpc-go's TCP_USER_TIMEOUT: the
// wrapper hides the *net.TCPConn on which grpc-go would set it, so before
// it was left at the kernel's default (0: many minutes of retransmissions
// to a peer that is gone).
func TestCappedConnectionKeepsItsUserTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	capped := capPerAddress(l, 1, new(atomic.Int64))
	defer capped.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := capped.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*cappedConn).Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	raw.Control(func(fd uintptr) { got, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) })
	if want := int(grpcapi.KeepaliveTimeout / time.Millisecond); err != nil || got != want {
		t.Errorf("TCP_USER_TIMEOUT = %d ms, %v; want %d ms", got, err, want)
	}
}
