package chatv1

import (
	"errors"

	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Why the server ended or refused a Connect session, beyond its status code:
// a google.rpc.ErrorInfo detail of domain ReasonDomain whose reason is one
// of these. Clients (the WebSocket bridge, the Go client) read it with
// ReasonOf rather than parse the status message, which is for people.
const (
	ReasonDomain = "tertulia.chat.v1"

	ReasonTokenExpired = chatcodes.CodeTokenExpired // Unauthenticated: the token expired, unrefreshed
	ReasonDisconnected = chatcodes.CodeDisconnected // PermissionDenied: an administrator disconnected the user
	ReasonBanned       = chatcodes.CodeBanned       // PermissionDenied: the user is banned
)

// ReasonStatus is a status of code with msg, carrying reason as an ErrorInfo
// detail.
func ReasonStatus(code codes.Code, msg, reason string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ReasonDomain}); err == nil {
		st = d
	}
	return st.Err()
}

// ReasonOf returns the reason of the ErrorInfo of ReasonDomain in err's
// status, "" if it has none.
func ReasonOf(err error) string {
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
