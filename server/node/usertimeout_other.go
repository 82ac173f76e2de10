//go:build !linux

package node

import (
	"net"
	"time"
)

// keepUserTimeout does nothing where TCP_USER_TIMEOUT is not known, as
// grpc-go does.
func keepUserTimeout(net.Conn, time.Duration) {}
