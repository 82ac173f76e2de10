package hub

import (
	"context"
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// Announcements cost one frame per member, so a lobby or room of N members
// that fills up would cost N²/2 frames: 10,000 distinct users joining one
// room set up at 49 connections/s when every join was announced. They are
// therefore sent only while the lobby or room has at most its presence
// limit of members; above it, who is there is asked for (Hub.Members).
//
// Members are counted in connections, cluster-wide, since each connection
// is sent a frame: a join is announced when the room has at most the limit
// with the joiner, a leave when it had at most the limit with the leaver, so
// that both are seen by the same members. The joiner always gets its own
// room_joined and the leaver its own room_left.

// DefaultPresenceLimit is the presence limit of a namespace without one.
const DefaultPresenceLimit = 500

// presenceLimit is the presence limit of room: its namespace's, or the
// node's; "" is the lobby, which is in the default namespace.
func (h *Hub) presenceLimit(room string) int {
	if n := h.cfg.Namespaces.Policy(room).PresenceLimit; n > 0 {
		return n
	}
	return h.cfg.PresenceLimit
}

// announced reports whether a change of presence in room ("" for the lobby),
// which had or has members member connections counting the one that
// changes, is told to the other members.
func (h *Hub) announced(room string, members int) bool {
	return members <= h.presenceLimit(room)
}

// Limits of one page of members.
const (
	DefaultMembersLimit = 100
	MaxMembersLimit     = 1000
)

// MembersPage is one page of a room's members.
type MembersPage struct {
	Room    string
	Members []Member // ordered by user id
	// Next is the cursor of the following page, "" on the last one.
	Next string
	// Total is how many users the room has.
	Total int
}

// Members lists the users in room across the cluster, at most limit of them
// (0 means DefaultMembersLimit, more than MaxMembersLimit means that), after
// cursor, "" for the first page or the Next of the previous one. Pages are
// stable: a user who stays in the room is on exactly one page of a walk
// through them, whoever joins or leaves meanwhile.
func (h *Hub) Members(ctx context.Context, room string, limit int, cursor string) (MembersPage, error) {
	room, rerr := RoomName(room)
	if rerr != nil {
		return MembersPage{}, rerr
	}
	switch {
	case limit < 0:
		return MembersPage{}, errorf(CodeInvalidLimit, "limit %d is negative", limit)
	case limit == 0:
		limit = DefaultMembersLimit
	case limit > MaxMembersLimit:
		limit = MaxMembersLimit
	}
	after, err := decodeCursor(cursor)
	if err != nil {
		return MembersPage{}, err
	}
	// One more than asked tells whether another page follows.
	ms, total, berr := h.broker.Members(ctx, room, after, limit+1)
	if berr != nil {
		return MembersPage{}, fmt.Errorf("members of room %q: %w", room, berr)
	}
	page := MembersPage{Room: room, Members: ms, Total: total}
	if len(ms) > limit {
		page.Members = ms[:limit]
		page.Next = encodeCursor(ms[limit-1].UserID)
	}
	return page, nil
}

// A cursor is the last user id of a page, opaque to clients.
func encodeCursor(userID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(userID))
}

func decodeCursor(cursor string) (string, *Error) {
	if cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return "", errorf(CodeInvalidCursor, "invalid cursor %q: pass the next_cursor of the previous page", cursor)
	}
	return string(b), nil
}
