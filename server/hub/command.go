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
	CmdRefresh
)

// Command is one client frame, in the hub's terms.
type Command struct {
	Kind CommandKind
	// ID is the client's id for this frame, echoed on the answers.
	ID         string
	Room       string
	Message    string
	TargetUser string
	Token      string // refresh only
}

// Error is a refusal the client is told about in an error event. The session
// goes on. Code is stable and machine-readable.
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

// DefaultRoom is the room joined or left when a frame names none, as in the seed.
const DefaultRoom = "general"

func (h *Hub) validateMessage(msg string) *Error {
	switch {
	case strings.TrimSpace(msg) == "":
		return errorf("empty_message", "message is empty")
	case len(msg) > h.cfg.MaxMessageBytes:
		return errorf("message_too_long", "message is %d bytes, over the limit of %d", len(msg), h.cfg.MaxMessageBytes)
	case !utf8.ValidString(msg):
		return errorf("invalid_message", "message is not valid UTF-8")
	}
	return nil
}

// Handle carries out one client command. A command that cannot be carried out
// is answered with an error event on this session, and changes nothing.
func (s *Session) Handle(ctx context.Context, cmd Command) {
	s.hub.metrics.commands[min(int(cmd.Kind), cmdKinds-1)].Add(1)
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
	case CmdRefresh:
		err = s.refresh(cmd)
	default:
		err = errorf("unknown_type", "unknown frame type")
	}
	if err != nil {
		s.sendError(cmd.ID, err)
	}
}

func (s *Session) member(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.rooms[room]
	return ok
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
			return errorf("not_in_room", "join room %q before sending to it", cmd.Room)
		}
		topic = topicRoom(cmd.Room)
	}
	ev := &Event{Kind: KindMessage, Time: s.hub.now(), ID: cmd.ID, ReplyTo: s.id, Message: cmd.Message,
		Room: cmd.Room, Sender: s.who.Name, UserID: s.who.UserID}
	if s.hub.publish(ctx, topic, ev) != nil {
		return errorf("unavailable", "message not sent: the broker is unavailable")
	}
	return nil
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
	s.mu.Lock()
	_, already := s.rooms[room]
	full := len(s.rooms) >= s.hub.cfg.MaxRooms
	if !already && !full {
		s.rooms[room] = struct{}{} // claimed now so that a racing join cannot pass the limit
	}
	s.mu.Unlock()
	switch {
	case already:
		return errorf("already_in_room", "already in room %q", room)
	case full:
		return errorf("too_many_rooms", "a connection may join at most %d rooms", s.hub.cfg.MaxRooms)
	}
	if err := s.mayJoin(ctx, room); err != nil {
		s.forget(room)
		return err
	}
	h := s.hub
	if err := h.attach(ctx, topicRoom(room), s); err != nil {
		s.forget(room)
		h.log.WarnContext(ctx, "join room", "conn", s.id, "room", room, "err", err)
		return errorf("unavailable", "could not join room %q: the broker is unavailable", room)
	}
	if err := h.broker.AddMember(ctx, room, s.conn()); err != nil {
		h.detachTopic(ctx, topicRoom(room), s)
		s.forget(room)
		h.log.WarnContext(ctx, "join room", "conn", s.id, "room", room, "err", err)
		return errorf("unavailable", "could not join room %q: the broker is unavailable", room)
	}
	h.publish(ctx, topicRoom(room), &Event{Kind: KindRoomJoined, Time: h.now(), ID: cmd.ID, ReplyTo: s.id, Room: room,
		UserID: s.who.UserID, Sender: s.who.Name})
	return nil
}

func (s *Session) forget(room string) {
	s.mu.Lock()
	delete(s.rooms, room)
	s.mu.Unlock()
}

func (s *Session) leave(ctx context.Context, cmd Command) *Error {
	room, err := roomOf(cmd)
	if err != nil {
		return err
	}
	s.mu.Lock()
	_, ok := s.rooms[room]
	delete(s.rooms, room)
	s.mu.Unlock()
	if !ok {
		return errorf("not_in_room", "not in room %q", room)
	}
	s.hub.leave(ctx, s, room, cmd.ID, false)
	return nil
}

// leave tells the room that s left (kicked, if an administrator took it
// out), then takes s out of it: s sees its own room_left, as its joining
// members saw room_joined.
func (h *Hub) leave(ctx context.Context, s *Session, room, id string, kicked bool) {
	h.publish(ctx, topicRoom(room), &Event{Kind: KindRoomLeft, Time: h.now(), ID: id, ReplyTo: s.id, Room: room,
		UserID: s.who.UserID, Sender: s.who.Name, Kicked: kicked})
	if err := h.broker.RemoveMember(ctx, room, s.conn()); err != nil {
		h.log.WarnContext(ctx, "leave room", "conn", s.id, "room", room, "err", err)
	}
	h.detachTopic(ctx, topicRoom(room), s)
}

func (s *Session) private(ctx context.Context, cmd Command) *Error {
	if cmd.TargetUser == "" {
		return errorf("invalid_target", "target_user is required")
	}
	if err := s.hub.validateMessage(cmd.Message); err != nil {
		return err
	}
	h := s.hub
	n, err := h.broker.UserConns(ctx, cmd.TargetUser)
	if err != nil {
		h.log.WarnContext(ctx, "count user connections", "conn", s.id, "user", cmd.TargetUser, "err", err)
		return errorf("unavailable", "private message not sent: the broker is unavailable")
	}
	if n > 0 {
		ev := &Event{Kind: KindPrivateMessage, Time: h.now(), ID: cmd.ID, ReplyTo: s.id, Message: cmd.Message,
			Sender: s.who.Name, UserID: s.who.UserID}
		if h.publish(ctx, topicUser(cmd.TargetUser), ev) != nil {
			return errorf("unavailable", "private message not sent: the broker is unavailable")
		}
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
