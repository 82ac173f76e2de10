package grpcapi

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tertulia/tertulia/server/hub"
)

// ReasonDomain is the domain of the google.rpc.ErrorInfo detail that names,
// in its reason, why the server ended or refused a session: "token_expired",
// "disconnected" or "banned" (the hub's codes). A client (the WebSocket
// bridge, the Go client) tells a session ended for its token from one ended
// by an administrator by this detail, not by parsing the status message.
const ReasonDomain = "tertulia.chat.v1"

// reasonStatus is a status with code and msg, carrying reason as ErrorInfo.
func reasonStatus(code codes.Code, msg, reason string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ReasonDomain}); err == nil {
		st = d
	}
	return st.Err()
}

// moderationStatus is the status a session ends with when its token expired
// (Unauthenticated) or an administrator ended it (PermissionDenied).
func moderationStatus(d hub.Disconnect) error {
	switch d.Code {
	case hub.DisconnectExpired:
		return reasonStatus(codes.Unauthenticated, d.Reason, hub.CodeTokenExpired)
	case hub.DisconnectBanned:
		return reasonStatus(codes.PermissionDenied, d.Reason, hub.CodeBanned)
	default:
		return reasonStatus(codes.PermissionDenied, d.Reason, hub.CodeDisconnected)
	}
}

// Reason returns the reason an ErrorInfo of ReasonDomain in err's status
// gives, "" if there is none.
func Reason(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return ""
	}
	for _, d := range se.GRPCStatus().Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ReasonDomain {
			return info.GetReason()
		}
	}
	return ""
}
