package bridge

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// appendJoined packs events into as few messages as fit within the limit,
// in order, and sends an event over the limit alone.
func TestAppendJoined(t *testing.T) {
	ev := func(n int) []byte { return []byte(`"` + strings.Repeat("e", n-2) + `"`) }
	for _, tc := range []struct {
		name   string
		sizes  []int
		limit  int
		groups []int // events per message
	}{
		{"one event", []int{10}, 100, []int{1}},
		{"all fit", []int{10, 10, 10}, 100, []int{3}},
		{"exactly the limit", []int{10, 10}, 21, []int{2}},
		{"one byte over", []int{10, 10}, 20, []int{1, 1}},
		{"split in order", []int{40, 40, 40, 10}, 100, []int{2, 2}},
		{"an event over the limit goes alone", []int{10, 300, 10}, 100, []int{1, 1, 1}},
		{"big payloads", []int{60 << 10, 60 << 10}, 64 << 10, []int{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var frames [][]byte
			for i, n := range tc.sizes {
				f := ev(n)
				f[1] = byte('a' + i) // tell them apart
				frames = append(frames, f)
			}
			r := bytes.NewReader(appendJoined(nil, frames, tc.limit))
			next := 0
			for i, k := range tc.groups {
				h, err := ws.ReadHeader(r)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if h.OpCode != ws.OpText || !h.Fin || h.Masked {
					t.Errorf("message %d: header %+v; want a final, unmasked text frame", i, h)
				}
				p := make([]byte, h.Length)
				if _, err := io.ReadFull(r, p); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				want := bytes.Join(frames[next:next+k], []byte("\n"))
				if !bytes.Equal(p, want) {
					t.Errorf("message %d: %d bytes starting %.12q; want %d bytes starting %.12q", i, len(p), p, len(want), want)
				}
				next += k
			}
			if r.Len() != 0 {
				t.Errorf("%d bytes after %d messages; want none", r.Len(), len(tc.groups))
			}
		})
	}
}
