package hub

import (
	"fmt"

	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
)

// The catalog of error codes is the wire contract's (proto/chat/v1/chatcodes,
// where each is described, a package that imports nothing): the hub names them, every transport reuses
// these constants and maps them onto its own statuses where it has any
// (see grpcapi).
const (
	// Refusals of a command by the hub.
	CodeInvalidRoom          = chatcodes.CodeInvalidRoom
	CodeEmptyMessage         = chatcodes.CodeEmptyMessage
	CodeMessageTooLong       = chatcodes.CodeMessageTooLong
	CodeInvalidMessage       = chatcodes.CodeInvalidMessage
	CodeNotInRoom            = chatcodes.CodeNotInRoom
	CodeAlreadyInRoom        = chatcodes.CodeAlreadyInRoom
	CodeTooManyRooms         = chatcodes.CodeTooManyRooms
	CodeInvalidTarget        = chatcodes.CodeInvalidTarget
	CodeUnknownType          = chatcodes.CodeUnknownType
	CodeUnavailable          = chatcodes.CodeUnavailable
	CodeForbidden            = chatcodes.CodeForbidden
	CodeInvalidJSON          = chatcodes.CodeInvalidJSON
	CodeInvalidFrame         = chatcodes.CodeInvalidFrame
	CodeAlreadyAuthenticated = chatcodes.CodeAlreadyAuthenticated
	CodeInvalidHistory       = chatcodes.CodeInvalidHistory
	CodeInvalidLimit         = chatcodes.CodeInvalidLimit
	CodeInvalidCursor        = chatcodes.CodeInvalidCursor

	// Refreshes, moderation, and the reasons a session ends for them (see
	// expiry.go and moderation.go).
	CodeInvalidToken    = chatcodes.CodeInvalidToken
	CodeTokenExpired    = chatcodes.CodeTokenExpired
	CodeBanned          = chatcodes.CodeBanned
	CodeDisconnected    = chatcodes.CodeDisconnected
	CodeInvalidDuration = chatcodes.CodeInvalidDuration
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
