package hub

import "time"

// Kind says what an Event is. The names follow DESIGN.md's frame types.
type Kind uint8

// The kinds of event a session can receive.
const (
	KindSystem Kind = iota + 1
	KindUserJoined
	KindUserLeft
	KindMessage
	KindRoomJoined
	KindRoomLeft
	KindPrivateMessage
	KindPrivateSent
	KindAdminBroadcast
	KindError
	KindAck
	KindPrivateRecovered
	// KindRefreshed answers a refresh: the session's token was replaced.
	KindRefreshed
	// KindDisconnect and KindKick are moderation orders between nodes,
	// published on a user's topic; no session is sent them (see moderate).
	KindDisconnect
	KindKick
)

var kindNames = [...]string{
	KindSystem:           "system",
	KindUserJoined:       "user_joined",
	KindUserLeft:         "user_left",
	KindMessage:          "message",
	KindRoomJoined:       "room_joined",
	KindRoomLeft:         "room_left",
	KindPrivateMessage:   "private_message",
	KindPrivateSent:      "private_sent",
	KindAdminBroadcast:   "admin_broadcast",
	KindError:            "error",
	KindAck:              "ack",
	KindPrivateRecovered: "private_recovered",
	KindRefreshed:        "refreshed",
	KindDisconnect:       "disconnect",
	KindKick:             "kick",
}

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool { return int(k) < len(kindNames) && kindNames[k] != "" }

// String returns the frame type name of k, as in DESIGN.md: the one table
// of these names, which every wire format that names kinds uses.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return "unknown"
}

// Event is one thing a session is told. Which fields are set depends on Kind;
// the mapping to each wire format lives with that format's adapter.
// An Event is immutable once published: it is shared by every recipient.
type Event struct {
	Kind Kind
	Time time.Time
	// ID echoes the client frame this event answers, if any. Only the copy
	// for the session ReplyTo names carries it (see deliver): other
	// recipients never see another client's ids.
	ID string
	// ReplyTo is the id of the connection whose frame this event answers.
	ReplyTo      string
	Message      string
	Room         string
	Sender       string // display name of the user the event is from
	UserID       string // id of the user the event is from or about
	ConnectionID string // system (welcome) only
	TargetUser   string // private_sent only
	Delivered    int    // private_sent only
	Code         string // error only; the ban or disconnect code of a moderation order
	// Offset and Epoch place a logged message (room message, private
	// message) in its log, or say a position: the latest at a join
	// (room_joined), of the inbox at connect (system), of an ack, of a
	// private_recovered.
	Offset    uint64
	Epoch     string
	Recovered Recovery // room_joined with since, private_recovered
	// ExpiresAt is when the session's token expires: system (welcome) and
	// refreshed only; zero for a session that does not expire.
	ExpiresAt time.Time
	Kicked    bool // room_left only: an administrator took the user out
	// Yours is set, on a kicked room_left, only on the copy for the session
	// ReplyTo names, the one taken out (see deliver): the copies the same
	// user's other sessions get are about another session. Never published.
	Yours bool
}

// Recovery says whether a recovery replayed everything that was missed.
type Recovery uint8

// The answers to a recovery; RecoveryNone when none was asked for.
const (
	RecoveryNone Recovery = iota
	Recovered
	NotRecovered
)

// Encoder turns an event into the bytes of one wire format. Encoders are
// compared by identity to share bytes between recipients, so each format must
// use one Encoder value for all its sessions. Encode must be safe for
// concurrent use and must not keep ev.
type Encoder interface {
	Encode(ev *Event) ([]byte, error)
}
