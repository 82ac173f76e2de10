package bridge

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunkReader returns its bytes a few at a time, as a socket may.
type chunkReader struct {
	b    []byte
	size int
	read int // bytes handed out
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.b)
	r.b = r.b[n:]
	r.read += n
	return n, nil
}

// FuzzReadHead feeds the bounded head reader arbitrary bytes in arbitrary
// pieces, the first of them read already (a prefix with spare capacity, as
// the listener hands it over, or none): it never panics, never reads past
// its bound, and a head it returns is a prefix of the input that ends with
// an empty line and holds at most the allowed header lines. Seeds:
// testdata/fuzz/FuzzReadHead.
func FuzzReadHead(f *testing.F) {
	f.Add([]byte("GET /api/v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"), uint8(7))
	f.Add([]byte("GET / HTTP/1.1\nHost: x\n\nrest"), uint8(1))
	f.Add(bytes.Repeat([]byte("a"), 300), uint8(64))
	f.Add([]byte("GET / HTTP/1.1\r\nA: b\r\nC: d\r\nE: f\r\n\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, size uint8) {
		const maxBytes, maxHeaders = 256, 2
		k := min(len(data), int(size>>5)*8) // bytes read already
		prefix := append(make([]byte, 0, k+int(size%7)*50), data[:k]...)
		r := &chunkReader{b: data[k:], size: int(size%32) + 1}
		head, rest, err := readHead(r, prefix, maxBytes, maxHeaders)
		if k+r.read > maxBytes {
			t.Fatalf("read %d bytes after a prefix of %d, want at most %d in all", r.read, k, maxBytes)
		}
		if err != nil {
			if !errors.Is(err, errHeadTooLarge) && !errors.Is(err, errTooManyHeaders) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v, want a bound's or an unexpected EOF", err)
			}
			return
		}
		if got := append(append([]byte(nil), head...), rest...); !bytes.Equal(got, data[:k+r.read]) {
			t.Fatalf("head+rest = %q, want what was read, %q", got, data[:k+r.read])
		}
		if !bytes.HasSuffix(head, []byte("\n\n")) && !bytes.HasSuffix(head, []byte("\n\r\n")) {
			t.Fatalf("head %q does not end with an empty line", head)
		}
		if lines := bytes.Count(head, []byte("\n")); lines > maxHeaders+2 {
			t.Fatalf("head %q has %d lines, want at most %d headers", head, lines, maxHeaders)
		}
	})
}
