package client

import chatv1 "github.com/tertulia/tertulia/proto/chat/v1"

// Refresh hands the session a new token for the same user before the
// current one expires. The server answers with a refreshed event carrying
// the new expiry, or with an error event (code invalid_token, or forbidden
// for another user's token); either way the session goes on. A session
// whose token expires unrefreshed ends with Reason ReasonTokenExpired.
func (s *Session) Refresh(token string) error {
	return s.SendFrame(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Refresh{Refresh: &chatv1.Refresh{Token: token}}})
}

// The reasons the server gives for ending or refusing a session.
const (
	ReasonTokenExpired = chatv1.ReasonTokenExpired // the token expired (codes.Unauthenticated)
	ReasonDisconnected = chatv1.ReasonDisconnected // an administrator disconnected the user (codes.PermissionDenied)
	ReasonBanned       = chatv1.ReasonBanned       // the user is banned (codes.PermissionDenied)
)

// Reason says why the server ended or refused a session, from the status
// err (such as Session.Err, or Connect's error) carries: one of the Reason
// constants, or "" for any other end. The status message is the text for a
// person: the administrator's reason, or the ban's.
func Reason(err error) string { return chatv1.ReasonOf(err) }
