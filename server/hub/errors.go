package hub

import "fmt"

// The catalog of error codes: the code of every error frame, whichever
// transport carries it. Codes are stable and machine-readable; every
// transport reuses these constants, and maps them onto its own statuses
// where it has any (see grpcapi).
const (
	// Refusals of a command by the hub.
	CodeInvalidRoom          = "invalid_room"          // a room name out of the rules
	CodeEmptyMessage         = "empty_message"         // a message with no text
	CodeMessageTooLong       = "message_too_long"      // a message over Config.MaxMessageBytes
	CodeInvalidMessage       = "invalid_message"       // a message that is not UTF-8
	CodeNotInRoom            = "not_in_room"           // a message to, or a leave of, a room not joined
	CodeAlreadyInRoom        = "already_in_room"       // a join of a room joined already
	CodeTooManyRooms         = "too_many_rooms"        // a join past Config.MaxRooms
	CodeInvalidTarget        = "invalid_target"        // a private message to nobody
	CodeUnknownType          = "unknown_type"          // a frame of no known type
	CodeUnavailable          = "unavailable"           // the broker could not carry the command out
	CodeForbidden            = "forbidden"             // a join or a message the room's namespace does not allow (access.go); a refresh for another user, or a guest's (expiry.go)
	CodeInvalidJSON          = "invalid_json"          // a WebSocket frame that is not JSON
	CodeInvalidFrame         = "invalid_frame"         // a WebSocket frame with a field of the wrong type
	CodeAlreadyAuthenticated = "already_authenticated" // an auth frame on an authenticated WebSocket
	CodeInvalidHistory       = "invalid_history"       // a join asking for a negative history
	CodeInvalidLimit         = "invalid_limit"         // a page size that is negative
	CodeInvalidCursor        = "invalid_cursor"        // a members cursor that no page gave

	// Refreshes, moderation, and the reasons a session ends for them (see
	// expiry.go and moderation.go).
	CodeInvalidToken    = "invalid_token"    // a refresh with a token that does not verify
	CodeTokenExpired    = "token_expired"    // a session whose token expired (a disconnect reason)
	CodeBanned          = "banned"           // a connect or join of a banned user; a session ended by a server ban
	CodeDisconnected    = "disconnected"     // a session an administrator ended (a disconnect reason)
	CodeInvalidDuration = "invalid_duration" // a ban that would end at once
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
