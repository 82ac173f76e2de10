package load

import (
	"bytes"
	"fmt"
	"time"
)

// A WebSocket text frame from the bridge holds one JSON event or, for a
// client that negotiated the tertulia.v1 subprotocol, several separated by
// '\n' (JSON text never holds a raw newline). nextEvent splits them off one
// at a time without copying; empty lines are skipped.
func nextEvent(p []byte) (ev, rest []byte) {
	for len(p) > 0 {
		ev, rest = p, nil
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			ev, rest = p[:i], p[i+1:]
		}
		if len(ev) > 0 && !(len(ev) == 1 && ev[0] == '\r') {
			return ev, rest
		}
		p = rest
	}
	return nil, nil
}

var (
	keyType    = []byte(`"type"`)
	keyMessage = []byte(`"message"`)
	keyID      = []byte(`"id"`)
	keyCode    = []byte(`"code"`)
	typePrefix = []byte(`{"type":"`)
	typeMsg    = []byte("message")
	typeJoined = []byte("room_joined")
	typeError  = []byte("error")
)

// eventType is the value of an event's "type". The bridge writes it first,
// so it is read at a fixed place, without a scan; any other layout falls
// back to jsonString.
func eventType(ev []byte) []byte {
	if bytes.HasPrefix(ev, typePrefix) {
		t := ev[len(typePrefix):]
		if end := bytes.IndexByte(t, '"'); end >= 0 {
			return t[:end]
		}
	}
	return jsonString(ev, keyType)
}

// messagePayload is the text of a message event (its "message" field),
// found by a byte scan that starts after the type, so that the value
// "message" of "type" is not taken for the key.
func messagePayload(ev []byte) []byte {
	if bytes.HasPrefix(ev, typePrefix) {
		return jsonString(ev[len(typePrefix)+len(typeMsg):], keyMessage)
	}
	return jsonString(ev, keyMessage)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, the rest (UTF-8) as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// jsonString returns the value of the string field key (with its quotes) of
// a flat JSON object, without unescaping; nil if there is none. It is enough
// for the server's frames, whose keys are unique and values never hold '"'
// in the fields read here.
func jsonString(b, key []byte) []byte {
	for off := 0; ; {
		i := bytes.Index(b[off:], key)
		if i < 0 {
			return nil
		}
		j := off + i + len(key)
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
			j++
		}
		if j >= len(b) || b[j] != ':' {
			off = off + i + 1 // a value that looks like the key
			continue
		}
		j++
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
			j++
		}
		if j >= len(b) || b[j] != '"' {
			return nil
		}
		end := bytes.IndexByte(b[j+1:], '"')
		if end < 0 {
			return nil
		}
		return b[j+1 : j+1+end]
	}
}

// scanFrame hands the events of one text frame to m, read by scanning
// bytes only, as the own client does with every frame: first is whether it
// is the connection's first frame, its welcome.
func scanFrame(m *member, p []byte, first bool, now time.Time) {
	for ev, rest := nextEvent(p); ev != nil; ev, rest = nextEvent(rest) {
		switch t := eventType(ev); {
		case first:
			onFirst(m, t)
		case bytes.Equal(t, typeMsg):
			onMessage(m, messagePayload(ev), now)
		case bytes.Equal(t, typeJoined):
			// Others' joins (the presence announcements a room's first
			// members get) are skipped once the own one has come.
			if !m.joined {
				onJoined(m, jsonString(ev, keyID))
			}
		case bytes.Equal(t, typeError):
			onError(m, jsonString(ev, keyCode), jsonString(ev, keyID), jsonString(ev, keyMessage))
		}
		first = false
	}
}

// onFirst is called with the type of a connection's first event, which
// must be its welcome.
func onFirst[T string | []byte](m *member, typ T) {
	if string(typ) == "system" {
		m.onWelcome()
		return
	}
	m.failSetup(fmt.Errorf("got a %q frame first, want the welcome (system)", typ))
}
