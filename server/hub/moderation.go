package hub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Moderation (DESIGN.md, "Access, sessions, moderation"): an administrator
// disconnects a user everywhere, kicks a user out of a room, bans a user
// from the server or a room for a while. Orders travel as events on the
// user's topic, which every node holding a connection of that user
// subscribes to, so they reach every node through the broker and cost
// nothing to nodes without that user. Bans live in the broker, so that
// every node refuses a banned user at connect and at join.

// Ban keeps a user out of the server (Room "") or out of one room until Until.
type Ban struct {
	User   string
	Room   string
	Reason string
	Until  time.Time
}

// Bans is the cluster-wide record of bans, kept by the broker. A ban lapses
// on its own at Until.
type Bans interface {
	// AddBan records b, replacing a ban of the same user and room.
	AddBan(ctx context.Context, b Ban) error
	// RemoveBan lifts the ban of user from room ("" for the server ban) and
	// returns it; ok is false if there was none in force.
	RemoveBan(ctx context.Context, user, room string) (b Ban, ok bool, err error)
	// Banned returns the ban in force that keeps user out of room: the
	// server ban first, else the ban from room (room "" asks for the server
	// ban only).
	Banned(ctx context.Context, user, room string) (b Ban, ok bool, err error)
	// ListBans returns the bans in force, in no particular order.
	ListBans(ctx context.Context) ([]Ban, error)
}

// BannedError refuses a banned user at connect or join.
type BannedError struct{ Ban Ban }

func (e *BannedError) Error() string {
	where := "this server"
	if e.Ban.Room != "" {
		where = "room " + e.Ban.Room
	}
	msg := "banned from " + where + " until " + e.Ban.Until.UTC().Format(time.RFC3339)
	if e.Ban.Reason != "" {
		msg += ": " + e.Ban.Reason
	}
	return msg
}

// refusal is e as an error frame, for a join.
func (e *BannedError) refusal() *Error {
	if e.Ban.Reason == "" {
		return errorf(CodeBanned, "banned from room %q until %s", e.Ban.Room, e.Ban.Until.UTC().Format(time.RFC3339))
	}
	return errorf(CodeBanned, "banned from room %q until %s: %s", e.Ban.Room, e.Ban.Until.UTC().Format(time.RFC3339), e.Ban.Reason)
}

// ErrNoBan is returned by Unban when there is no such ban.
var ErrNoBan = errors.New("no such ban")

// checkBan returns a *BannedError if user may not be in room ("" for the
// server).
func (h *Hub) checkBan(ctx context.Context, user, room string) error {
	b, banned, err := h.broker.Banned(ctx, user, room)
	if err != nil {
		return fmt.Errorf("check bans: %w", err)
	}
	if banned {
		return &BannedError{Ban: b}
	}
	return nil
}

// mayJoin refuses a join of room by a banned user. It runs under s.ops: a
// ban recorded after this check kicks the session once the join is done.
func (s *Session) mayJoin(ctx context.Context, room string) *Error {
	if s.who.Guest {
		return nil
	}
	err := s.hub.checkBan(ctx, s.who.UserID, room)
	var banned *BannedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &banned):
		return banned.refusal()
	default:
		s.hub.log.Warn("join room", "room", room, "err", err)
		return errorf(CodeUnavailable, "could not join room %q: the broker is unavailable", room)
	}
}

// DisconnectUser ends every session of user in the cluster, telling each
// reason, and returns how many connections the user had.
func (h *Hub) DisconnectUser(ctx context.Context, user, reason string) (int, error) {
	if user == "" {
		return 0, errorf(CodeInvalidTarget, "user is required")
	}
	if reason == "" {
		reason = "disconnected by an administrator"
	}
	n, err := h.broker.UserConns(ctx, user)
	if err != nil {
		return 0, fmt.Errorf("disconnect %s: %w", user, err)
	}
	if err := h.publish(ctx, topicUser(user), &Event{Kind: KindDisconnect, Time: h.now(), UserID: user,
		Code: CodeDisconnected, Message: reason}); err != nil {
		return 0, fmt.Errorf("disconnect %s: %w", user, err)
	}
	return n, nil
}

// Kick takes every session of user in the cluster out of room.
func (h *Hub) Kick(ctx context.Context, room, user string) error {
	if user == "" {
		return errorf(CodeInvalidTarget, "user is required")
	}
	room, rerr := RoomName(room)
	if rerr != nil {
		return rerr
	}
	if err := h.publish(ctx, topicUser(user), &Event{Kind: KindKick, Time: h.now(), UserID: user, Room: room}); err != nil {
		return fmt.Errorf("kick %s: %w", user, err)
	}
	return nil
}

// Ban bans b.User from the server (b.Room "") or from b.Room until b.Until,
// and returns the ban as recorded: a server ban disconnects the user's
// sessions now, a room ban takes them out of the room.
func (h *Hub) Ban(ctx context.Context, b Ban) (Ban, error) {
	if b.User == "" {
		return Ban{}, errorf(CodeInvalidTarget, "user is required")
	}
	if b.Room != "" {
		var rerr *Error
		if b.Room, rerr = RoomName(b.Room); rerr != nil {
			return Ban{}, rerr
		}
	}
	if !b.Until.After(h.now()) {
		return Ban{}, errorf(CodeInvalidDuration, "a ban must end in the future")
	}
	b.Until = b.Until.UTC()
	if err := h.broker.AddBan(ctx, b); err != nil {
		return Ban{}, fmt.Errorf("ban %s: %w", b.User, err)
	}
	// Stored before the order goes out: a session that connects or joins
	// meanwhile either sees the ban or gets the order (see Open and join).
	ev := &Event{Kind: KindDisconnect, Time: h.now(), UserID: b.User, Code: CodeBanned, Message: (&BannedError{Ban: b}).Error()}
	if b.Room != "" {
		ev = &Event{Kind: KindKick, Time: h.now(), UserID: b.User, Room: b.Room, Code: CodeBanned}
	}
	if err := h.publish(ctx, topicUser(b.User), ev); err != nil {
		return b, fmt.Errorf("ban %s: %w", b.User, err)
	}
	return b, nil
}

// Unban lifts the ban of user from room ("" for the server ban) and
// returns it; ErrNoBan if there is none in force.
func (h *Hub) Unban(ctx context.Context, user, room string) (Ban, error) {
	if room != "" {
		var rerr *Error
		if room, rerr = RoomName(room); rerr != nil {
			return Ban{}, rerr
		}
	}
	b, ok, err := h.broker.RemoveBan(ctx, user, room)
	if err != nil {
		return Ban{}, fmt.Errorf("lift ban of %s: %w", user, err)
	}
	if !ok {
		return Ban{}, ErrNoBan
	}
	return b, nil
}

// Bans lists the bans in force across the cluster, by user, then by room
// (a server ban, room "", first).
func (h *Hub) Bans(ctx context.Context) ([]Ban, error) {
	bans, err := h.broker.ListBans(ctx)
	if err != nil {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	slices.SortFunc(bans, func(x, y Ban) int {
		return cmp.Or(strings.Compare(x.User, y.User), strings.Compare(x.Room, y.Room))
	})
	return bans, nil
}

// moderationTimeout bounds the broker calls of a kick of one session
// carried out on this node.
const moderationTimeout = 5 * time.Second

// moderate carries out a moderation order on this node's sessions of the
// user whose topic it came on. It runs as the broker's handler and must
// not block: closing a transport may wait a moment, so a disconnect is
// carried out on a goroutine of its own, and a kick talks to the broker, so
// it has a goroutine per session: each waits for its session's command
// under way (see kick), and one slow join must not hold back the others.
func (h *Hub) moderate(topic string, ev *Event) {
	g := h.lookup(topic)
	if g == nil {
		return
	}
	g.mu.Lock()
	sessions := append([]*Session(nil), g.list...)
	g.mu.Unlock()
	if len(sessions) == 0 {
		return
	}
	switch ev.Kind {
	case KindDisconnect:
		go h.disconnect(sessions, ev)
	case KindKick:
		for _, s := range sessions {
			go s.kick(ev.Room)
		}
	}
}

// disconnect ends sessions as an order ev of KindDisconnect says.
func (h *Hub) disconnect(sessions []*Session, ev *Event) {
	code := DisconnectKicked
	if ev.Code == CodeBanned {
		code = DisconnectBanned
	}
	for _, s := range sessions {
		h.log.Info("disconnecting by order", "conn", s.id, "user", s.who.UserID, "code", ev.Code)
		s.out.drain(Disconnect{Code: code, Reason: ev.Message})
	}
}

// kick takes s out of room, if it is there, as a leave would, with kicked
// set. Its broker calls have moderationTimeout from the moment its turn
// comes.
func (s *Session) kick(room string) {
	// In turn with the session's commands: a join under way when the kick
	// came is done, then undone.
	s.ops.Lock()
	defer s.ops.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), moderationTimeout)
	defer cancel()
	if s.quit(ctx, room, "", true) {
		s.hub.log.Info("kicked from room", "conn", s.id, "user", s.who.UserID, "room", room)
	}
}
