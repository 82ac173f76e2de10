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
// reader, so the garbage collector can shrink its stack.
func waitReadable(rc syscall.RawConn, peek *[1]byte) error {
	return rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// On EAGAIN, wait for the poller and look again; anything else,
		// a byte, the end or an error, is for the reader to meet.
		return err != syscall.EAGAIN && err != syscall.EINTR
	})
}
