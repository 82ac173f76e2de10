package bridge

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends j to dst as encoding/json writes it with HTML
// escaping off (see EncodeFrame): the fields in serverJSON's order, those
// tagged omitempty left out when empty, strings escaped alike byte for
// byte. It is written out by hand because encoding/json's reflection cost
// a microsecond or two per frame, and a server sends every connection
// several frames as it sets up (the welcome, room_joined, the presence of
// those who join after it). TestAppendJSONMatchesEncodingJSON and
// FuzzAppendJSON hold it to encoding/json's output.
func (j *serverJSON) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, j.Type)
	dst = append(dst, `,"timestamp":`...)
	dst = j.Timestamp.appendJSON(dst)
	for _, f := range [...]struct{ key, value string }{
		{`,"id":`, j.ID},
		{`,"message":`, j.Message},
		{`,"sender":`, j.Sender},
		{`,"user_id":`, j.UserID},
		{`,"username":`, j.Username},
		{`,"connection_id":`, j.ConnectionID},
		{`,"room":`, j.Room},
		{`,"target_user":`, j.TargetUser},
	} {
		if f.value != "" {
			dst = append(dst, f.key...)
			dst = appendString(dst, f.value)
		}
	}
	if j.Delivered.set {
		dst = append(dst, `,"delivered":`...)
		dst = strconv.AppendInt(dst, int64(j.Delivered.v), 10)
	}
	if j.Code != "" {
		dst = append(dst, `,"code":`...)
		dst = appendString(dst, j.Code)
	}
	if j.Offset.set {
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendUint(dst, j.Offset.v, 10)
	}
	if j.Epoch.set {
		dst = append(dst, `,"epoch":`...)
		dst = appendString(dst, j.Epoch.v)
	}
	if j.Recovered.set {
		dst = append(dst, `,"recovered":`...)
		dst = strconv.AppendBool(dst, j.Recovered.v)
	}
	if j.Inbox.set {
		dst = append(dst, `,"inbox":{"offset":`...)
		dst = strconv.AppendUint(dst, j.Inbox.v.Offset, 10)
		dst = append(dst, `,"epoch":`...)
		dst = appendString(dst, j.Inbox.v.Epoch)
		dst = append(dst, '}')
	}
	if j.ExpiresAt.set {
		dst = append(dst, `,"expires_at":`...)
		dst = j.ExpiresAt.v.appendJSON(dst)
	}
	if j.Kicked {
		dst = append(dst, `,"kicked":true`...)
	}
	if j.Yours {
		dst = append(dst, `,"yours":true`...)
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string, escaped as encoding/json does
// with HTML escaping off: '"' and '\' with a backslash; \b, \f, \n, \r
// and \t by name, other control bytes as \u00xx; bytes that are not UTF-8
// as \ufffd; U+2028 and U+2029 as \u2028 and \u2029 (they end lines in
// JavaScript). Everything else, "<", ">" and "&" included, as it is.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0 // s[start:i] is still to be copied
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// opt is an optional field of a frame: left out unless set.
type opt[T any] struct {
	v   T
	set bool
}

func some[T any](v T) opt[T] { return opt[T]{v: v, set: true} }

// IsZero is what omitzero omits: an opt not set.
func (o opt[T]) IsZero() bool { return !o.set }

// frameTime is a time in a frame: a JSON string in timeLayout, in UTC.
type frameTime struct{ time.Time }

// appendJSON appends t as a JSON string in timeLayout; years of four digits, all a
// timestamppb.Timestamp holds but the first millennium, without
// time.Format's parsing of the layout.
func (t frameTime) appendJSON(dst []byte) []byte {
	u := t.UTC()
	year, month, day := u.Date()
	dst = append(dst, '"')
	if year < 1000 || year > 9999 {
		dst = u.AppendFormat(dst, timeLayout)
		return append(dst, '"')
	}
	hour, minute, sec := u.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, u.Nanosecond()/1e6, 3) // truncated, as Format does
	return append(dst, 'Z', '"')
}

// appendDigits appends n, at least 0, as width decimal digits, zeros first.
func appendDigits(dst []byte, n, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		dst = append(dst, 0)
	}
	for i := len(dst) - 1; i >= len(dst)-width; i-- {
		dst[i] = byte('0' + n%10)
		n /= 10
	}
	return dst
}
