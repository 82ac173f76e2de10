package bridge

import (
	"syscall"
	"unsafe"
)

// peekReadable reports whether the socket fd has something for the reader:
// a byte, its end or an error. On EAGAIN it reports false, and the caller
// waits for the poller and looks again.
//
// It is a raw system call: MSG_DONTWAIT makes it return at once, so it
// needs none of syscall.Recvfrom's scheduler hand-off, whose frames (half a
// KiB) on the deepest point of an idle connection's goroutine made its
// stack grow from 2 to 4 KiB, for good (see Conn.Serve).
func peekReadable(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN && errno != syscall.EINTR
}
