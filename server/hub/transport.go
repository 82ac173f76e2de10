package hub

// Transport is what the hub asks of a connection. A gRPC stream and a
// WebSocket are adapters that implement it.
type Transport interface {
	// Encoder is the wire format of this connection.
	Encoder() Encoder
	// Write sends frames, in order, as few writes as it can manage. The hub
	// calls it from one goroutine at a time; it may block.
	Write(frames [][]byte) error
	// Close ends the connection and tells the client why. It must not block
	// on the client and may be called more than once; only the first counts.
	Close(d Disconnect)
}

// DisconnectCode says why the hub ended a session.
type DisconnectCode uint8

// The reasons a session ends from the server side.
const (
	// DisconnectSlow: the client did not read fast enough and its queue overflowed.
	DisconnectSlow DisconnectCode = iota + 1
	// DisconnectShutdown: the server is going away.
	DisconnectShutdown
	// DisconnectWriteError: a write to the client failed.
	DisconnectWriteError
	// DisconnectDone: the client said it was done, and what was queued for
	// it has been written.
	DisconnectDone
	// DisconnectExpired: the session's token expired and was not refreshed.
	DisconnectExpired
	// DisconnectKicked: an administrator disconnected the user; Reason is theirs.
	DisconnectKicked
	// DisconnectBanned: the user was banned from the server.
	DisconnectBanned
	// DisconnectRestart: the node is going away for a moment (a rolling
	// restart); the client should reconnect, to another node if it can,
	// after a random wait. WebSocket 1012 "service restart", gRPC Unavailable.
	DisconnectRestart
)

// Disconnect is the reason a session was closed by the server.
type Disconnect struct {
	Code   DisconnectCode
	Reason string
}

var (
	disconnectSlow    = Disconnect{Code: DisconnectSlow, Reason: "slow consumer: outbound queue full"}
	disconnectRestart = Disconnect{Code: DisconnectRestart, Reason: "service restart"}
)
