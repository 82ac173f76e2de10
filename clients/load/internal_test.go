package load

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestPayloadCarriesSendTimeAndSequence(t *testing.T) {
	now := time.Date(2026, 11, 26, 8, 0, 0, 123456789, time.UTC)
	for _, want := range []stamp{
		{sent: now.UnixNano(), pub: 0, seq: 42},
		{sent: now.UnixNano(), pub: 99_999, seq: 1<<63 - 1},
	} {
		p := stampPayload(make([]byte, 0, PayloadSize), now, want.pub, want.seq)
		if len(p) != PayloadSize {
			t.Fatalf("got %d payload bytes, want %d", len(p), PayloadSize)
		}
		if got, ok := readStamp(string(p)); !ok || got != want {
			t.Errorf("readStamp(%q): got %+v %v, want %+v true", p, got, ok, want)
		}
	}
	for _, other := range []string{"", "hello", "12345 not a time", "17641440001234567890123 x",
		"1764144000123456789 42 ....", "1764144000123456789  42 ...", "1764144000123456789 99999999999 1 ..."} {
		if s, ok := readStamp(other); ok {
			t.Errorf("readStamp(%q): got %+v, want not a stamp", other, s)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, 1000 * time.Millisecond}} {
		got := h.Quantile(tc.q)
		if d := got - tc.want; d < -tc.want/50 || d > tc.want/50 {
			t.Errorf("quantile %v: got %v, want %v within 2%%", tc.q, got, tc.want)
		}
	}
	if h.Max() != time.Second || h.Count() != 1000 {
		t.Errorf("got max %v count %d, want 1s 1000", h.Max(), h.Count())
	}
	h.Reset()
	if h.Count() != 0 || h.Quantile(.5) != 0 {
		t.Errorf("got count %d after Reset, want 0", h.Count())
	}
}

func TestJSONString(t *testing.T) {
	for _, tc := range []struct{ in, key, want string }{
		{`{"type":"message","message":"1 2"}`, `"type"`, "message"},
		{`{"type":"message","message":"1 2"}`, `"message"`, "1 2"},
		{`{"type" : "room_joined", "id": "j7"}`, `"id"`, "j7"},
		{`{"message":"x"}`, `"id"`, ""},
		{`{"id":3}`, `"id"`, ""},
	} {
		if got := string(jsonString([]byte(tc.in), []byte(tc.key))); got != tc.want {
			t.Errorf("jsonString(%s, %s): got %q, want %q", tc.in, tc.key, got, tc.want)
		}
	}
}

// A failed dial says why without the token, which was in the URL.
func TestDialErrorHidesToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	const tok = "eyJhbGciOiJIUzI1NiJ9.secret-part.signature"
	tokens := func(string) (string, error) { return tok, nil }
	for _, d := range []dialer{newWSDialer(addr, tokens, false), newCoderDialer(addr, tokens)} {
		_, err := d.dial(context.Background(), "alice", "", "", newMember(nil, ""))
		if err == nil {
			t.Fatalf("%s: dial to a closed port succeeded", d.name())
		}
		if strings.Contains(err.Error(), "secret-part") || !strings.Contains(err.Error(), "websocket dial") {
			t.Errorf("%s: got error %q, want a websocket dial error without the token", d.name(), err)
		}
	}
}
