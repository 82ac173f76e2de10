package hub_test

import (
	"strings"
	"testing"

	"github.com/tertulia/tertulia/server/hub"
)

func TestRoomName(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means refused
	}{
		{"general", "general"},
		{"café con leche", "café con leche"},
		{"cafe\u0301 con leche", "café con leche"}, // NFC
		{"Café con leche", "Café con leche"},       // case kept
		{"ＡＢ", "ＡＢ"},                               // width kept: not NFKC
		{"sala 1", "sala 1"},
		{"team:eng", "team:eng"},
		{"a_b.c-d", "a_b.c-d"},
		{"日本語", "日本語"},
		{"हिन्दी", "हिन्दी"}, // vowel signs are marks after letters
		{strings.Repeat("ñ", 64), strings.Repeat("ñ", 64)},
		{strings.Repeat("n\u0303", 64), strings.Repeat("ñ", 64)}, // 64 after NFC
		{"", ""},
		{strings.Repeat("a", 65), ""},
		{"bell\x07", ""},
		{"tab\there", ""},
		{"zero\u200bwidth", ""}, // format character
		{"bidi\u202e", ""},
		{"fiesta 🎉", ""},
		{"a/b", ""},
		{"\u0301accent first", ""},
		{" lead", ""},
		{"trail ", ""},
		{":eng", ""},
		{"team:", ""},
		{"bad\xffutf8", ""},
	} {
		got, err := hub.RoomName(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("RoomName(%q) = %q, want refused", tc.in, got)
		case tc.want == "" && err.Code != "invalid_room":
			t.Errorf("RoomName(%q) code = %s, want invalid_room", tc.in, err.Code)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("RoomName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := hub.RoomName(strings.Repeat("x", 100000)); err == nil || len(err.Message) > 200 {
		t.Errorf("huge name: %v, want a short refusal", err)
	}
}
