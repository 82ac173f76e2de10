package bridge

import (
	"context"
	"errors"

	"github.com/gobwas/ws"
	"google.golang.org/grpc/peer"
)

// peerContext carries the browser's address as the session's gRPC peer, so
// that the core counts the session against its per-IP limit as it does a
// gRPC client's.
func peerContext(c *Conn) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{Addr: c.nc.RemoteAddr()})
}

// errBadCloseCode is a close frame whose code a peer may not send.
var errBadCloseCode = errors.New("close code not allowed on the wire")

// checkClose checks a close frame from the browser: gobwas/ws's checks, and
// the code's range, which RFC 6455 (7.4) limits to the codes it defines
// (1000-1003, 1007-1011, and 1012-1014 registered since) and 3000-4999.
// gobwas/ws lets codes from 5000 up through, which must be answered with
// 1002, not echoed.
func checkClose(code ws.StatusCode, reason string) error {
	if err := ws.CheckCloseFrameData(code, reason); err != nil {
		return err
	}
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return nil
	}
	return errBadCloseCode
}

// maxEchoedID bounds the id the bridge echoes on its own error frames; a
// longer one is not echoed (the core refuses the frame with id_too_long).
const maxEchoedID = 64

// echoedID is id if it may be echoed, else "".
func echoedID(id string) string {
	if len(id) > maxEchoedID {
		return ""
	}
	return id
}
