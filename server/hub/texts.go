package hub

import "github.com/tertulia/tertulia/server/i18n"

// Human texts follow each connection's language (DESIGN.md, "Frames: rules
// every transport keeps"): a session's language is picked once, at
// Connect, from its identity. Texts for one session (its welcome, its
// errors, private_sent) are written in its language when they are sent.
// Announcements go to many sessions of many languages, on every node: they
// travel without text, and each node writes the text when it delivers them,
// once per language and wire format (see deliver).

// announced reports whether events of kind k carry a text the hub writes
// at delivery, from the event's fields.
func announced(k Kind) bool {
	switch k {
	case KindUserJoined, KindUserLeft, KindRoomJoined, KindRoomLeft:
		return true
	}
	return false
}

// localize returns ev as sessions speaking l see it: ev itself, or, for an
// announcement, a copy with its text in l.
func (h *Hub) localize(ev *Event, l i18n.Lang) *Event {
	if !announced(ev.Kind) {
		return ev
	}
	c := *ev
	t := h.cfg.Texts
	switch ev.Kind {
	case KindUserJoined:
		c.Message = t.Sprintf(l, "%s joined the chat", ev.Sender)
	case KindUserLeft:
		c.Message = t.Sprintf(l, "%s left the chat", ev.Sender)
	case KindRoomJoined:
		c.Message = t.Sprintf(l, "%s joined room %s", ev.Sender, ev.Room)
	case KindRoomLeft:
		c.Message = t.Sprintf(l, "%s left room %s", ev.Sender, ev.Room)
	}
	return &c
}

// Texts are the hub's texts, for the answers a transport writes itself
// (such as a REST call's).
func (h *Hub) Texts() *i18n.Catalog { return h.cfg.Texts }

// text formats the text whose English format is key in the session's language.
func (s *Session) text(key string, args ...any) string {
	return s.hub.cfg.Texts.Sprintf(s.lang, key, args...)
}

// language picks the language of a session speaking for who.
func (h *Hub) language(who Identity) i18n.Lang {
	return h.cfg.Texts.Match(who.Locale, who.AcceptLanguage)
}

// Errorf returns a refusal with a stable code and a text whose English
// format is format: the session it is sent to reads it in its language.
// Transports use it for the frames they cannot map (see Session.Refuse).
func Errorf(code, format string, args ...any) *Error { return errorf(code, format, args...) }

// MessageIn is the text of e in language l of t.
func (e *Error) MessageIn(t *i18n.Catalog, l i18n.Lang) string {
	if e.format == "" {
		return e.Message
	}
	return t.Sprintf(l, e.format, e.args...)
}

// Refuse answers a client frame that the transport could not map (bad
// JSON, an unknown type) with an error event carrying id. It is queued
// like every other answer, so a connection's answers keep the order of
// its frames: call it from the goroutine that calls Handle, in turn.
func (s *Session) Refuse(id string, err *Error) { s.sendError(id, err) }
