// Package chatcodes is the catalog of chat.v1's error codes. It imports
// nothing, so that the server's core (server/hub), which must not depend on
// gRPC, names the codes the wire carries without importing chatv1.
package chatcodes

// The catalog of error codes: the code of every error frame (ServerFrame
// Error.code, the WebSocket "error" frame's "code"), whichever transport
// carries it, and the reasons a session ends. Codes are stable and
// machine-readable; the server's core (server/hub) names these constants,
// and clients compare against them rather than spell them again.
const (
	// Refusals of a command by the hub.
	CodeInvalidRoom          = "invalid_room"          // a room name out of the rules
	CodeEmptyMessage         = "empty_message"         // a message with no text
	CodeMessageTooLong       = "message_too_long"      // a message over the server's message limit
	CodeInvalidMessage       = "invalid_message"       // a message that is not UTF-8
	CodeNotInRoom            = "not_in_room"           // a message to, or a leave of, a room not joined
	CodeAlreadyInRoom        = "already_in_room"       // a join of a room joined already
	CodeTooManyRooms         = "too_many_rooms"        // a join past the server's room limit
	CodeInvalidTarget        = "invalid_target"        // a private message to nobody
	CodeUnknownType          = "unknown_type"          // a frame of no known type
	CodeUnavailable          = "unavailable"           // the broker could not carry the command out
	CodeForbidden            = "forbidden"             // a join or a message the room's namespace does not allow (server/hub/access.go); a refresh for another user, or a guest's (server/hub/expiry.go)
	CodeInvalidJSON          = "invalid_json"          // a WebSocket frame that is not JSON
	CodeInvalidFrame         = "invalid_frame"         // a WebSocket frame with a field of the wrong type
	CodeAlreadyAuthenticated = "already_authenticated" // an auth frame on an authenticated WebSocket
	CodeInvalidHistory       = "invalid_history"       // a join asking for a negative history
	CodeInvalidLimit         = "invalid_limit"         // a page size that is negative
	CodeInvalidCursor        = "invalid_cursor"        // a members cursor that no page gave

	// Refreshes, moderation, and the reasons a session ends for them (see
	// server/hub/expiry.go and moderation.go).
	CodeInvalidToken    = "invalid_token"    // a refresh with a token that does not verify
	CodeTokenExpired    = "token_expired"    // a session whose token expired (a disconnect reason)
	CodeBanned          = "banned"           // a connect or join of a banned user; a session ended by a server ban
	CodeDisconnected    = "disconnected"     // a session an administrator ended (a disconnect reason)
	CodeInvalidDuration = "invalid_duration" // a ban that would end at once
)

// The error codes of limits, on error frames (and, for the connection
// counts, in the status that refuses a session).
const (
	CodeRateLimited  = "rate_limited"         // a frame over a rate; it was not carried out
	CodeFlood        = "flood"                // starts the close reason of a flooding connection
	CodeIDTooLong    = "id_too_long"          // a frame's id over the id limit (64 bytes); it was not carried out
	CodeTooManyConns = "too_many_connections" // a session over a connection count, refused
)
