package hub

import (
	"context"
	"fmt"
)

// This file is the history contract of DESIGN.md ("History,
// acknowledgements, recovery"): room and inbox logs, acks and
// de-duplication of resends, recovery on join and of the private inbox, and
// the history API.

// roomLimits bounds the log of room, by its namespace: the namespace's
// policy (Config.Namespaces) where it sets them, else Config.History.
// A negative Size (history off) is kept as it is.
func (h *Hub) roomLimits(room string) LogLimits {
	var lim LogLimits
	if h.cfg.History != nil {
		lim = h.cfg.History(Namespace(room))
	}
	if p := h.cfg.Namespaces.Policy(room); p.HistorySize != 0 || p.HistoryTTL != 0 {
		if p.HistorySize != 0 {
			lim.Size = p.HistorySize
		}
		if p.HistoryTTL != 0 {
			lim.TTL = p.HistoryTTL
		}
	}
	if lim.Size < 0 {
		return lim
	}
	return lim.WithDefaults()
}

// appendOptions are how a frame with id from s to topic is recorded in a
// log bounded by lim (lim.Size 0: not logged). The dedup key names the
// user's frame cluster-wide; it includes topic so that an id reused for
// another destination is not taken for a resend.
func (s *Session) appendOptions(topic, id string, lim LogLimits) AppendOptions {
	opt := AppendOptions{Log: lim}
	if id != "" {
		opt.DedupKey = s.who.UserID + "\x00" + topic + "\x00" + id
		opt.DedupTTL = s.hub.cfg.DedupWindow
	}
	return opt
}

// append hands ev from s to the broker's log of topic, bounded by lim, as
// publish does for unlogged events: counted, timed, a failure logged.
func (s *Session) append(ctx context.Context, topic string, ev *Event, id string, lim LogLimits) (Receipt, error) {
	h := s.hub
	var r Receipt
	err := h.observed(func() (err error) {
		r, err = h.broker.Append(ctx, topic, ev, s.appendOptions(topic, id, lim))
		return err
	})
	if err != nil {
		h.log.WarnContext(ctx, "append", "conn", s.id, "topic", topic, "kind", ev.Kind.String(), "err", err)
	}
	return r, err
}

// post publishes a lobby or room message from s. A room message is logged;
// a message with an id is de-duplicated and acknowledged once the broker
// holds it. The ack of a resend repeats the first one's position.
func (s *Session) post(ctx context.Context, topic string, ev *Event, id string) *Error {
	h := s.hub
	var lim LogLimits // lobby: no log
	if ev.Room != "" {
		if lim = h.roomLimits(ev.Room); lim.Size < 0 {
			lim = LogLimits{} // history off
		}
	}
	if lim.Size == 0 && id == "" {
		// Seed-compatible chatter without a log: no ack; while Redis is
		// away it still reaches this node's sessions.
		if h.publish(ctx, topic, ev) != nil {
			return errorf(CodeUnavailable, "message not sent: the broker is unavailable")
		}
		return nil
	}
	r, err := s.append(ctx, topic, ev, id, lim)
	if err != nil {
		return errorf(CodeUnavailable, "message not sent: the broker is unavailable")
	}
	if id != "" {
		s.send(&Event{Kind: KindAck, Time: h.now(), ID: id, Room: ev.Room, Offset: r.Offset, Epoch: r.Epoch})
	}
	return nil
}

// sendPrivate records a private message in the target's inbox, which
// delivers it to the target's connections, and acknowledges it to s. It
// reports whether it was a resend that was not delivered again.
func (s *Session) sendPrivate(ctx context.Context, target string, ev *Event, id string) (dup bool, err *Error) {
	h := s.hub
	r, aerr := s.append(ctx, topicUser(target), ev, id, h.cfg.Inbox)
	if aerr != nil {
		return false, errorf(CodeUnavailable, "private message not sent: the broker is unavailable")
	}
	if id != "" {
		s.send(&Event{Kind: KindAck, Time: h.now(), ID: id, Offset: r.Offset, Epoch: r.Epoch})
	}
	return r.Duplicate, nil
}

// joined tells room that s joined it, and s its position in the room's log,
// followed by the replay cmd asks for, then the live events held back since
// s subscribed. The caller made s hold the room's topic back before
// subscribing.
func (s *Session) joined(ctx context.Context, room string, cmd Command, announce bool) {
	h := s.hub
	topic := topicRoom(room)
	// The other members' copy, without the frame's id, only while the room
	// is within its presence limit; ReplyTo marks it as s's, which s drops
	// from what it held back: s gets its own copy below.
	if announce {
		h.publish(ctx, topic, &Event{Kind: KindRoomJoined, Time: h.now(), ReplyTo: s.id, Room: room,
			UserID: s.who.UserID, Sender: s.who.Name})
	}

	lim := h.roomLimits(room)
	q := LogQuery{Limits: lim}
	switch {
	case lim.Size < 0: // history off: the position only
	case cmd.Since != nil:
		q.After, q.Limit = cmd.Since.Offset, lim.Size
	case cmd.History > 0:
		q.Tail, q.Limit = true, min(cmd.History, lim.Size)
	}
	page, err := h.broker.ReadLog(ctx, topic, q)
	if err != nil {
		// The join stands; the client learns nothing of the log, and a
		// recovery fails: it reloads through the history API.
		h.log.WarnContext(ctx, "read log", "conn", s.id, "topic", topic, "err", err)
		page = LogPage{}
	}
	own := &Event{Kind: KindRoomJoined, Time: h.now(), ID: cmd.ID, ReplyTo: s.id, Room: room,
		UserID: s.who.UserID, Sender: s.who.Name, Offset: page.Offset, Epoch: page.Epoch}
	replay := withoutIDs(page.Events)
	if cmd.Since != nil {
		own.Recovered = NotRecovered
		if err == nil && lim.Size >= 0 && recovered(*cmd.Since, page, page.Offset) {
			own.Recovered = Recovered
		} else {
			replay = nil
		}
	}
	// Up to the position read, the replay has each message, or the client
	// did not ask for it.
	s.release(topic, append([]*Event{own}, replay...), page.Position, func(ev *Event) bool {
		return ev.Kind == KindRoomJoined && ev.ReplyTo == s.id
	})
}

// withoutIDs returns copies of logged events without their senders' frame
// ids: a replay answers none of the recipient's frames.
func withoutIDs(evs []*Event) []*Event {
	out := make([]*Event, len(evs))
	for i, ev := range evs {
		c := *ev
		c.ID = ""
		out[i] = &c
	}
	return out
}

// recovered reports whether page, read after since, holds every message
// after since up to offset upTo, in since's epoch. A client that has seen
// nothing (offset 0, no epoch) is in every epoch.
func recovered(since Position, page LogPage, upTo uint64) bool {
	if since.Epoch != page.Epoch && (since.Epoch != "" || since.Offset != 0) {
		return false
	}
	if since.Offset > page.Offset {
		return false
	}
	next := since.Offset + 1
	for _, ev := range page.Events {
		if ev.Offset > upTo {
			break
		}
		if ev.Offset != next {
			return false
		}
		next++
	}
	return next > upTo
}

// inboxAtConnect reads the position of s's inbox once s subscribes to its
// user's topic (held back by the caller), and releases what was held back
// but the messages up to that position: the private messages sent to s live
// are exactly those after it, and a recovery replays those up to it.
func (s *Session) inboxAtConnect(ctx context.Context) Position {
	h := s.hub
	topic := topicUser(s.who.UserID)
	page, err := h.broker.ReadLog(ctx, topic, LogQuery{Limits: h.cfg.Inbox})
	if err != nil {
		h.log.WarnContext(ctx, "read inbox", "conn", s.id, "user", s.who.UserID, "err", err)
	}
	s.release(topic, nil, page.Position, nil)
	s.inboxAt, s.inboxRead = page.Position, err == nil
	return page.Position
}

// recoverPrivate replays the private messages after since that s was not
// sent live, then tells s whether that is all it missed.
func (s *Session) recoverPrivate(ctx context.Context, cmd Command) *Error {
	if cmd.Since == nil {
		return errorf(CodeInvalidFrame, "recover_private needs since")
	}
	h := s.hub
	lim := h.cfg.Inbox.WithDefaults()
	page, err := h.broker.ReadLog(ctx, topicUser(s.who.UserID), LogQuery{After: cmd.Since.Offset, Limit: lim.Size, Limits: lim})
	if err != nil {
		h.log.WarnContext(ctx, "read inbox", "conn", s.id, "user", s.who.UserID, "err", err)
		return errorf(CodeUnavailable, "could not read the inbox: the broker is unavailable")
	}
	upTo := page.Offset
	// The later ones were sent live. An inbox that had no epoch at connect
	// (never written, or expired) got every message since live.
	if s.inboxRead && (page.Epoch == s.inboxAt.Epoch || s.inboxAt.Epoch == "") {
		upTo = min(upTo, s.inboxAt.Offset)
	}
	done := &Event{Kind: KindPrivateRecovered, Time: h.now(), ID: cmd.ID, Offset: page.Offset, Epoch: page.Epoch, Recovered: NotRecovered}
	if recovered(*cmd.Since, page, upTo) {
		done.Recovered = Recovered
		for _, ev := range withoutIDs(page.Events) {
			if ev.Offset <= upTo {
				s.send(ev)
			}
		}
	}
	s.send(done)
	return nil
}

// History is a room's log, as GET /api/v1/websocket/rooms/{room}/history and
// ChatService.GetHistory return it: the latest limit messages, or those
// after since. limit 0, or over the room's history size, means that size.
// It returns the room's name as the server spells it (see RoomName).
func (h *Hub) History(ctx context.Context, room string, since *uint64, limit int) (string, LogPage, error) {
	room, err := RoomName(room)
	if err != nil {
		return "", LogPage{}, err
	}
	if limit < 0 {
		return "", LogPage{}, errorf(CodeInvalidLimit, "limit must not be negative")
	}
	lim := h.roomLimits(room)
	if lim.Size < 0 {
		return room, LogPage{}, nil
	}
	if limit == 0 || limit > lim.Size {
		limit = lim.Size
	}
	q := LogQuery{Tail: true, Limit: limit, Limits: lim}
	if since != nil {
		q.Tail, q.After = false, *since
	}
	page, rerr := h.broker.ReadLog(ctx, topicRoom(room), q)
	if rerr != nil {
		return "", LogPage{}, fmt.Errorf("history of %s: %w", room, rerr)
	}
	return room, page, nil
}

// historyDefaults fills the history fields of c.
func (c Config) historyDefaults() Config {
	if c.DedupWindow <= 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	c.Inbox = c.Inbox.WithDefaults()
	return c
}
