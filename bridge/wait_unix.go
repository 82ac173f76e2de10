//go:build unix

package bridge

import (
	"net"
	"syscall"
)

// rawConnOf returns the socket of nc, for waitReadable, or nil.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// waitReadable parks the calling goroutine until the socket has a byte to
// read, has reached its end or failed, or the read deadline passes (the
// error then is the deadline's). It peeks without consuming anything.
//
// It exists for memory: a connection's goroutine spends its idle life
// parked here, a few frames deep, rather than at the bottom of the frame
// reader, so that its stack stays at the smallest size (see Conn.Serve).
// peekReadable is a plain function, not a closure, so that a wait
// allocates nothing.
func waitReadable(rc syscall.RawConn) error {
	return rc.Read(peekReadable)
}
