package hub

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxRoomChars bounds a room name, in characters after NFC normalisation.
const MaxRoomChars = 64

// maxRoomBytes bounds a name before normalisation.
const maxRoomBytes = 16 * MaxRoomChars

// RoomName checks a room name as a client wrote it and returns the name of
// the room: its NFC normalisation, so that "café" typed with a combining
// accent and with a precomposed é is one room. Every path that takes a
// room name (frames of every transport, REST and gRPC calls) goes through
// it. A name is 1 to 64 Unicode letters, digits, spaces and '_', '.', '-',
// ':' — ':' separates a namespace ("team:eng"), so neither side of it may be
// empty — with no space at either end. Combining marks may follow a letter
// or digit: scripts such as Devanagari write vowels with marks that NFC
// leaves apart. Case and width are kept: "Sala" and "sala", or "ＡＢ" and
// "AB", are different rooms (NFC, not NFKC, and no case folding).
// A refusal has the code invalid_room.
func RoomName(room string) (string, *Error) {
	if room == "" {
		return "", errorf(CodeInvalidRoom, "room name is empty")
	}
	if !utf8.ValidString(room) {
		return "", errorf(CodeInvalidRoom, "room name %q may hold only letters, digits, spaces and _ . - :", room)
	}
	// Bound the work before normalising. NFC composes a letter and its
	// accents into one character, so a decomposed name may be longer than
	// 4 bytes a character, but not 16 times.
	if len(room) > maxRoomBytes {
		return "", errorf(CodeInvalidRoom, "room name %q is longer than %d characters", truncate(room), MaxRoomChars)
	}
	name := norm.NFC.String(room)
	if utf8.RuneCountInString(name) > MaxRoomChars {
		return "", errorf(CodeInvalidRoom, "room name %q is longer than %d characters", truncate(name), MaxRoomChars)
	}
	prev := rune(-1)
	for _, r := range name {
		if !roomRune(r, prev) {
			return "", errorf(CodeInvalidRoom, "room name %q may hold only letters, digits, spaces and _ . - :", truncate(name))
		}
		prev = r
	}
	if strings.HasPrefix(name, " ") || strings.HasSuffix(name, " ") {
		return "", errorf(CodeInvalidRoom, "room name %q starts or ends with a space", name)
	}
	if ns, rest, ok := strings.Cut(name, ":"); ok && (ns == "" || rest == "" || strings.HasSuffix(ns, " ") || strings.HasPrefix(rest, " ")) {
		return "", errorf(CodeInvalidRoom, "room name %q has an empty part around ':'", name)
	}
	return name, nil
}

// roomRune reports whether r may stand in a room name after prev (-1 at
// the start).
func roomRune(r, prev rune) bool {
	switch {
	case unicode.IsLetter(r), unicode.IsDigit(r):
		return true
	case r == ' ', r == '_', r == '.', r == '-', r == ':':
		return true
	case unicode.Is(unicode.M, r):
		return prev >= 0 && (unicode.IsLetter(prev) || unicode.IsDigit(prev) || unicode.Is(unicode.M, prev))
	}
	return false // control (Cc), format (Cf), symbols and emoji, other spaces
}

// truncate shortens a refused name for an error text, which must stay
// short whatever the client sent.
func truncate(s string) string {
	const max = MaxRoomChars + 8
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	i := 0
	for n := 0; n < max; n++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

// CheckUserText checks a user id or a display name as a token or a client
// gives it: valid UTF-8, at most MaxUserIDBytes bytes, and none of the
// characters that would break or reorder the text shown around it on other
// members' screens: controls (Cc: NUL, line breaks, escapes) and the
// bidirectional embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069). Other format characters stay: scripts such as Persian
// need the zero-width non-joiner, and emoji sequences the joiner.
func CheckUserText(s string) error {
	switch {
	case !utf8.ValidString(s):
		return errors.New("is not UTF-8")
	case len(s) > MaxUserIDBytes:
		return fmt.Errorf("is %d bytes, over the limit of %d", len(s), MaxUserIDBytes)
	}
	for _, r := range s {
		if unicode.IsControl(r) || ('\u202a' <= r && r <= '\u202e') || ('\u2066' <= r && r <= '\u2069') {
			return fmt.Errorf("holds the control character %U", r)
		}
	}
	return nil
}

// Namespace is the part of a room name before ':', "" for the default
// namespace.
func Namespace(room string) string {
	ns, _, ok := strings.Cut(room, ":")
	if !ok {
		return ""
	}
	return ns
}
