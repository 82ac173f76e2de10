package grpcapi

import (
	"google.golang.org/grpc/codes"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
)

// moderationStatus is the status a session ends with when its token expired
// (Unauthenticated) or an administrator ended it (PermissionDenied), with
// the reason as a detail (see chatv1.ReasonOf).
func moderationStatus(d hub.Disconnect) error {
	switch d.Code {
	case hub.DisconnectExpired:
		return chatv1.ReasonStatus(codes.Unauthenticated, d.Reason, chatv1.ReasonTokenExpired)
	case hub.DisconnectBanned:
		return chatv1.ReasonStatus(codes.PermissionDenied, d.Reason, chatv1.ReasonBanned)
	default:
		return chatv1.ReasonStatus(codes.PermissionDenied, d.Reason, chatv1.ReasonDisconnected)
	}
}
