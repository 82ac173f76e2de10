package hub

import (
	"fmt"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// The catalog of error codes is the wire contract's (chatv1, codes.go,
// where each is described): the hub names them, every transport reuses
// these constants and maps them onto its own statuses where it has any
// (see grpcapi).
const (
	// Refusals of a command by the hub.
	CodeInvalidRoom          = chatv1.CodeInvalidRoom
	CodeEmptyMessage         = chatv1.CodeEmptyMessage
	CodeMessageTooLong       = chatv1.CodeMessageTooLong
	CodeInvalidMessage       = chatv1.CodeInvalidMessage
	CodeNotInRoom            = chatv1.CodeNotInRoom
	CodeAlreadyInRoom        = chatv1.CodeAlreadyInRoom
	CodeTooManyRooms         = chatv1.CodeTooManyRooms
	CodeInvalidTarget        = chatv1.CodeInvalidTarget
	CodeUnknownType          = chatv1.CodeUnknownType
	CodeUnavailable          = chatv1.CodeUnavailable
	CodeForbidden            = chatv1.CodeForbidden
	CodeInvalidJSON          = chatv1.CodeInvalidJSON
	CodeInvalidFrame         = chatv1.CodeInvalidFrame
	CodeAlreadyAuthenticated = chatv1.CodeAlreadyAuthenticated
	CodeInvalidHistory       = chatv1.CodeInvalidHistory
	CodeInvalidLimit         = chatv1.CodeInvalidLimit
	CodeInvalidCursor        = chatv1.CodeInvalidCursor

	// Refreshes, moderation, and the reasons a session ends for them (see
	// expiry.go and moderation.go).
	CodeInvalidToken    = chatv1.CodeInvalidToken
	CodeTokenExpired    = chatv1.CodeTokenExpired
	CodeBanned          = chatv1.CodeBanned
	CodeDisconnected    = chatv1.CodeDisconnected
	CodeInvalidDuration = chatv1.CodeInvalidDuration
)

// Error is a refusal the client is told about in an error event. The session
// goes on. Code is one of the catalog's.
type Error struct {
	Code    string
	Message string // in English
	// format and args write Message in a session's language (see MessageIn).
	format string
	args   []any
}

func (e *Error) Error() string { return e.Message }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), format: format, args: args}
}
