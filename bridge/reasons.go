package bridge

import (
	"github.com/gobwas/ws"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// The close codes of sessions the server ended for their user (in the
// 4000-4999 range RFC 6455 leaves to applications), which a page shows
// rather than reconnect: a new connection would meet the same fate.
const (
	// CloseTokenExpired: the session's token expired and was not refreshed.
	CloseTokenExpired ws.StatusCode = 4001
	// CloseModerated: an administrator disconnected the user, or the user
	// is banned (at connect, or a ban that ends a session); the reason says which.
	CloseModerated ws.StatusCode = 4003
)

// reasonCloses maps the reason a session was ended or refused for (the
// ErrorInfo reason of its status, see chatv1.ReasonOf) onto its close code.
// The same table serves in-process sessions and sessions over gRPC.
var reasonCloses = map[string]ws.StatusCode{
	chatv1.ReasonTokenExpired: CloseTokenExpired,
	chatv1.ReasonDisconnected: CloseModerated,
	chatv1.ReasonBanned:       CloseModerated,
}
