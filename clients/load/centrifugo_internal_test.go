package load

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Replies as Centrifugo v6.9.1 wrote them to a connection of the tool (the
// TestCentrifugo run against the real server checks the same end to end,
// where a binary is at hand): the connect and subscribe replies, then
// publications batched with the publish replies in one frame, one a line.
const (
	cfConnectReply   = `{"id":1,"connect":{"client":"747e14c8-ad0e-46ec-b298-bfa0a25ccb15","version":"6.9.1 OSS","expires":true,"ttl":3600,"ping":25,"pong":true}}`
	cfSubscribeReply = `{"id":2,"subscribe":{}}`
)

// cfBatch is a frame of publications of payloads, each followed by the
// publish reply id, as Centrifugo batches them.
func cfBatch(payloads ...[]byte) []byte {
	var b []byte
	for i, p := range payloads {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, `{"push":{"channel":"bench","pub":{"data":"`...)
		b = append(b, p...)
		b = append(b, `","info":{"user":"alice","client":"747e14c8"}}}}`+"\n"+`{"id":`...)
		b = strconv.AppendInt(b, int64(3+i), 10)
		b = append(b, `,"publish":{}}`...)
	}
	return b
}

func TestCentrifugoFramesSetUpAndCount(t *testing.T) {
	m := newMember(new(Histogram), "j7")
	pongs := 0
	pong := func() error { pongs++; return nil }
	sent := time.Unix(0, 1796143576198074715)
	now := sent.Add(time.Millisecond)
	batch := cfBatch(stampPayload(nil, sent, 1, 0), stampPayload(nil, sent, 1, 1))
	for i, f := range [][]byte{[]byte(cfConnectReply), []byte(cfSubscribeReply + "\n{}"), batch} {
		if err := cfFrame(m, "j7", f, now, pong); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if i == 0 && m.isReady {
			t.Fatal("ready after the connect reply alone, want it after the subscribe reply")
		}
	}
	if !m.isReady || m.setupErr != nil {
		t.Errorf("got ready %v, error %v; want set up", m.isReady, m.setupErr)
	}
	if got, extra := m.seen.got.Load(), m.seen.extra.Load(); got != 2 || extra != 0 {
		t.Errorf("got %d messages (%d extra) from the batched frame, want 2 (none extra)", got, extra)
	}
	if pongs != 1 {
		t.Errorf("got %d pongs for one ping, want 1", pongs)
	}
}

func TestCentrifugoRefusalsFailTheSetUp(t *testing.T) {
	for _, tc := range []struct{ name, frame, want string }{
		{"connect", `{"id":1,"error":{"code":109,"message":"token expired"}}`, "connect refused: 109: token expired"},
		{"subscribe", cfConnectReply + "\n" + `{"id":2,"error":{"code":103,"message":"permission denied"}}`, "join refused: 103: permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMember(nil, "j1")
			if err := cfFrame(m, "j1", []byte(tc.frame), time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			if m.setupErr == nil || !strings.Contains(m.setupErr.Error(), tc.want) {
				t.Errorf("got set-up error %v, want %q", m.setupErr, tc.want)
			}
		})
	}
}

func TestCentrifugoBadFramesEndTheConnection(t *testing.T) {
	m := newMember(nil, "")
	if err := cfFrame(m, "", []byte(cfConnectReply+"\nnot json"), time.Now(), nil); err == nil || !strings.Contains(err.Error(), "undecodable reply") {
		t.Errorf("got %v, want an undecodable reply", err)
	}
	failed := errors.New("broken pipe")
	if err := cfFrame(m, "", []byte("{}"), time.Now(), func() error { return failed }); !errors.Is(err, failed) {
		t.Errorf("got %v, want the pong's error", err)
	}
}

func TestCentrifugoCommandFrames(t *testing.T) {
	got := string(cfSetUpFrame(nil, "tok", "café con leche"))
	want := `{"id":1,"connect":{"token":"tok"}}` + "\n" + `{"id":2,"subscribe":{"channel":"café con leche"}}`
	if got != want {
		t.Errorf("set-up frame:\n got %s\nwant %s", got, want)
	}
	if got := string(cfSetUpFrame(nil, "tok", "")); got != `{"id":1,"connect":{"token":"tok"}}` {
		t.Errorf("set-up frame without a room: got %s", got)
	}
	p := stampPayload(nil, time.Unix(0, 1796143576198074715), 1, 9)
	got = string(cfPublishFrame(nil, 12, "bench", p))
	if want := `{"id":12,"publish":{"channel":"bench","data":"` + string(p) + `"}}`; got != want {
		t.Errorf("publish frame:\n got %s\nwant %s", got, want)
	}
}

// A publish Centrifugo refuses as "not available" (108) is counted as
// refused, as Tertulia's unavailable is; any other error is not.
func TestCentrifugoNotAvailableIsRefused(t *testing.T) {
	m := newMember(new(Histogram), "j7")
	for _, f := range []string{
		`{"id":9,"error":{"code":108,"message":"not available"}}`,
		`{"id":10,"error":{"code":111,"message":"too many requests"}}`,
	} {
		if err := cfFrame(m, "j7", []byte(f), time.Now(), func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.refused.Load(); got != 1 {
		t.Errorf("refused %d, want 1 (the 108 only)", got)
	}
}
