//go:build unix && !linux

package bridge

import "syscall"

// peekReadable reports whether the socket fd has something for the reader:
// a byte, its end or an error. On EAGAIN it reports false, and the caller
// waits for the poller and looks again.
func peekReadable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN && err != syscall.EINTR
}
