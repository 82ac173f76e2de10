package hub

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// CommandKind says what a client asks for.
type CommandKind uint8

// The commands a client can send.
const (
	CmdMessage CommandKind = iota + 1
	CmdJoinRoom
	CmdLeaveRoom
	CmdPrivateMessage
	CmdRecoverPrivate
	CmdRefresh
	numCommandKinds // not a kind: one past the last, which every table covers
)

// Command is one client frame, in the hub's terms.
type Command struct {
	Kind CommandKind
	// ID is the client's id for this frame, echoed on the answers.
	ID         string
	Room       string
	Message    string
	TargetUser string
	// Since asks a join, or a recover_private, to replay what was logged
	// after it; History asks a join for the latest that many messages.
	Since   *Position
	History int
	Token   string // refresh only
}

// DefaultRoom is the room joined or left when a frame names none, as in the seed.
const DefaultRoom = "general"

func (h *Hub) validateMessage(msg string) *Error {
	switch {
	case strings.TrimSpace(msg) == "":
		return errorf(CodeEmptyMessage, "message is empty")
	case len(msg) > h.cfg.MaxMessageBytes:
		return errorf(CodeMessageTooLong, "message is %d bytes, over the limit of %d", len(msg), h.cfg.MaxMessageBytes)
	case !utf8.ValidString(msg):
		return errorf(CodeInvalidMessage, "message is not valid UTF-8")
	}
	return nil
}

// Handle carries out one client command. A command that cannot be carried out
// is answered with an error event on this session, and changes nothing. A
// join after Close is dropped: a transport's reader may still hand over a
// frame while its session ends.
func (s *Session) Handle(ctx context.Context, cmd Command) {
	s.hub.metrics.commands[min(int(cmd.Kind), cmdKinds-1)].Add(1)
	if err := s.limit(&cmd); err != nil {
		s.sendError(cmd.ID, err)
		return
	}
	s.ops.Lock()
	defer s.ops.Unlock()
	var err *Error
	switch cmd.Kind {
	case CmdMessage:
		err = s.message(ctx, cmd)
	case CmdJoinRoom:
		err = s.join(ctx, cmd)
	case CmdLeaveRoom:
		err = s.leave(ctx, cmd)
	case CmdPrivateMessage:
		err = s.private(ctx, cmd)
	case CmdRecoverPrivate:
		err = s.recoverPrivate(ctx, cmd)
	case CmdRefresh:
		err = s.refresh(cmd)
	default:
		err = errorf(CodeUnknownType, "unknown frame type")
	}
	if err != nil {
		s.sendError(cmd.ID, err)
	}
}

func (s *Session) member(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms.has(room)
}

func (s *Session) message(ctx context.Context, cmd Command) *Error {
	if err := s.hub.validateMessage(cmd.Message); err != nil {
		return err
	}
	topic := topicLobby
	if cmd.Room != "" {
		var err *Error
		if cmd.Room, err = RoomName(cmd.Room); err != nil {
			return err
		}
		if !s.member(cmd.Room) {
			return errorf(CodeNotInRoom, "join room %q before sending to it", cmd.Room)
		}
		if err := s.hub.cfg.Namespaces.MayPublish(s.who, cmd.Room); err != nil {
			return err
		}
		topic = topicRoom(cmd.Room)
	}
	ev := &Event{Kind: KindMessage, Time: s.hub.now(), ID: cmd.ID, ReplyTo: s.id, Message: cmd.Message,
		Room: cmd.Room, Sender: s.who.Name, UserID: s.who.UserID}
	return s.post(ctx, topic, ev, cmd.ID)
}

// roomOf is the room a join or leave names: DefaultRoom when it names none.
func roomOf(cmd Command) (string, *Error) {
	if cmd.Room == "" {
		return DefaultRoom, nil
	}
	return RoomName(cmd.Room)
}

func (s *Session) join(ctx context.Context, cmd Command) *Error {
	room, err := roomOf(cmd)
	if err != nil {
		return err
	}
	if cmd.History < 0 {
		return errorf(CodeInvalidHistory, "history must not be negative")
	}
	if err := s.hub.cfg.Namespaces.MayJoin(s.who, room); err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	already := s.rooms.has(room)
	full := len(s.rooms) >= s.hub.cfg.MaxRooms
	if !closed && !already && !full {
		s.rooms = append(s.rooms, room) // claimed now so that a racing join cannot pass the limit
	}
	s.mu.Unlock()
	switch {
	case closed:
		return nil // Close has taken the session out of every room; it stays out
	case already:
		return errorf(CodeAlreadyInRoom, "already in room %q", room)
	case full:
		return errorf(CodeTooManyRooms, "a connection may join at most %d rooms", s.hub.cfg.MaxRooms)
	}
	if err := s.mayJoin(ctx, room); err != nil {
		s.forget(room)
		return err
	}
	h := s.hub
	s.holdBack(topicRoom(room)) // until joined has sent the log's position
	if err := h.subscribe(ctx, topicRoom(room), s); err != nil {
		return s.unjoin(ctx, room, false, err)
	}
	members, berr := h.broker.AddMember(ctx, room, s.presence())
	if berr != nil {
		return s.unjoin(ctx, room, true, berr)
	}
	if s.isClosed() {
		// Close came while this join was under way: it left the rooms it
		// found, this one too, maybe before the join subscribed. Its
		// subscription is undone here; the broker joins a closed
		// connection to nothing (see Presence.AddMember, RemoveConn).
		return s.unjoin(ctx, room, true, nil)
	}
	s.joined(ctx, room, cmd, h.announced(room, members))
	return nil
}

// unjoin undoes a join of room that did not go through: its subscription
// if subscribed, its hold on the room's events, its claim on room. For the
// broker's err it logs err and returns the error the client gets; for a
// nil err (Close came meanwhile) it returns nil.
func (s *Session) unjoin(ctx context.Context, room string, subscribed bool, err error) *Error {
	if subscribed {
		s.hub.unsubscribe(ctx, topicRoom(room), s)
	}
	s.forgetHold(topicRoom(room))
	s.forget(room)
	if err == nil {
		return nil
	}
	s.hub.log.WarnContext(ctx, "join room", "conn", s.id, "room", room, "err", err)
	return errorf(CodeUnavailable, "could not join room %q: the broker is unavailable", room)
}

// isClosed reports whether Close has been called.
func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Session) forget(room string) {
	s.mu.Lock()
	s.rooms.remove(room)
	s.mu.Unlock()
}

func (s *Session) leave(ctx context.Context, cmd Command) *Error {
	room, err := roomOf(cmd)
	if err != nil {
		return err
	}
	if !s.quit(ctx, room, cmd.ID, false) {
		return errorf(CodeNotInRoom, "not in room %q", room)
	}
	return nil
}

// quit takes s out of room, if it is there, and reports whether it was:
// its catching up ends and the room is told (see Hub.leave). id is the
// leave frame's, kicked says an administrator took s out.
func (s *Session) quit(ctx context.Context, room, id string, kicked bool) bool {
	s.mu.Lock()
	ok := s.rooms.remove(room)
	s.mu.Unlock()
	if ok {
		s.forgetHold(topicRoom(room))
		s.hub.leave(ctx, s, room, id, kicked)
	}
	return ok
}

// leave takes s out of room and tells the room, if within its presence
// limit, before s stops listening to it: s sees its own room_left, as the
// members saw room_joined. Above the limit only s is told. kicked says an
// administrator took s out; s's own copy then has Yours set (see deliver).
func (h *Hub) leave(ctx context.Context, s *Session, room, id string, kicked bool) {
	members, err := h.broker.RemoveMember(ctx, room, s.presence())
	if err != nil {
		// Told as before the limits: the members this node can reach must
		// hear it, and the count is unknown.
		h.log.WarnContext(ctx, "leave room", "conn", s.id, "room", room, "err", err)
		members = 0
	}
	ev := &Event{Kind: KindRoomLeft, Time: h.now(), ID: id, ReplyTo: s.id, Room: room,
		UserID: s.who.UserID, Sender: s.who.Name, Kicked: kicked}
	if h.announced(room, members) {
		h.publish(ctx, topicRoom(room), ev)
	} else {
		ev.Yours = kicked // s's own copy, the only one: deliver marks it so when published
		s.send(ev)
	}
	h.unsubscribe(ctx, topicRoom(room), s)
}

// MaxUserIDBytes bounds a user id that a client or an administrator names
// (target_user, the admin API's user), as OpenID Connect bounds sub to 255
// ASCII characters.
const MaxUserIDBytes = 256

func (s *Session) private(ctx context.Context, cmd Command) *Error {
	if cmd.TargetUser == "" {
		return errorf(CodeInvalidTarget, "target_user is required")
	}
	if len(cmd.TargetUser) > MaxUserIDBytes {
		// No user has such an id; the inbox it would open would hold it.
		return errorf(CodeInvalidTarget, "target_user is %d bytes, over the limit of %d", len(cmd.TargetUser), MaxUserIDBytes)
	}
	if err := s.hub.validateMessage(cmd.Message); err != nil {
		return err
	}
	h := s.hub
	n, err := h.broker.UserConns(ctx, cmd.TargetUser)
	if err != nil {
		h.log.WarnContext(ctx, "count user connections", "conn", s.id, "user", cmd.TargetUser, "err", err)
		return errorf(CodeUnavailable, "private message not sent: the broker is unavailable")
	}
	// Logged even when the target is away: its inbox keeps it for recovery.
	ev := &Event{Kind: KindPrivateMessage, Time: h.now(), ID: cmd.ID, ReplyTo: s.id, Message: cmd.Message,
		Sender: s.who.Name, UserID: s.who.UserID}
	if dup, err := s.sendPrivate(ctx, cmd.TargetUser, ev, cmd.ID); err != nil || dup {
		return err
	}
	ack := s.text("Private message sent to %s", cmd.TargetUser)
	if n == 0 {
		ack = s.text("User %s is not connected", cmd.TargetUser)
	}
	s.send(&Event{Kind: KindPrivateSent, Time: h.now(), ID: cmd.ID, Message: ack, TargetUser: cmd.TargetUser, Delivered: n})
	return nil
}

// Broadcast sends an admin_broadcast to everyone, or to one room's members,
// and returns how many connections it was addressed to.
func (h *Hub) Broadcast(ctx context.Context, message, room string) (int, error) {
	if err := h.validateMessage(message); err != nil {
		return 0, err
	}
	if room != "" {
		var err *Error
		if room, err = RoomName(room); err != nil {
			return 0, err
		}
	}
	snap, err := h.broker.Snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("broadcast: %w", err)
	}
	n, topic := snap.Connections, topicLobby
	if room != "" {
		n, topic = snap.Rooms[room], topicRoom(room)
	}
	if n == 0 {
		return 0, nil
	}
	if err := h.publish(ctx, topic, &Event{Kind: KindAdminBroadcast, Time: h.now(), Message: message, Room: room}); err != nil {
		return 0, fmt.Errorf("broadcast: %w", err)
	}
	return n, nil
}

// Stats are cluster-wide counts, as GET /api/v1/websocket/stats shows them.
type Stats struct {
	TotalConnections int
	Users            []string
	Rooms            map[string]int
}

// Stats reports connections, users and rooms across the cluster.
func (h *Hub) Stats(ctx context.Context) (Stats, error) {
	snap, err := h.broker.Snapshot(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	users := append([]string(nil), snap.Users...)
	sort.Strings(users)
	rooms := make(map[string]int, len(snap.Rooms))
	for r, n := range snap.Rooms {
		if n > 0 {
			rooms[r] = n
		}
	}
	return Stats{TotalConnections: snap.Connections, Users: users, Rooms: rooms}, nil
}
