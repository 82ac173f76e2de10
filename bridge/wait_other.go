//go:build !unix

package bridge

import (
	"net"
	"syscall"
)

// rawConnOf returns nil: without waitReadable, a connection's goroutine
// waits in the frame reader itself.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func waitReadable(syscall.RawConn) error { return nil }
