package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// countingEncoder is one wire format that counts how often it encodes.
type countingEncoder struct{ calls atomic.Int64 }

func (e *countingEncoder) Encode(ev *hub.Event) ([]byte, error) {
	e.calls.Add(1)
	return []byte(ev.Kind.String() + ":" + ev.Message), nil
}

// recordingTransport keeps every frame the hub writes to it.
type recordingTransport struct {
	enc hub.Encoder

	mu     sync.Mutex // protects frames
	frames [][]byte
}

func (t *recordingTransport) Encoder() hub.Encoder { return t.enc }
func (t *recordingTransport) Close(hub.Disconnect) {}
func (t *recordingTransport) Write(frames [][]byte) error {
	t.mu.Lock()
	t.frames = append(t.frames, frames...)
	t.mu.Unlock()
	return nil
}

func (t *recordingTransport) find(want string) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.frames {
		if string(f) == want {
			return f
		}
	}
	return nil
}

// An event fanned out to many sessions is encoded once per wire format, and
// every session of a format is handed the very same bytes.
func TestFanoutEncodesOncePerWireFormat(t *testing.T) {
	const perFormat = 50
	ctx := context.Background()
	h := hub.New(hub.Config{}, memory.New())
	formats := []*countingEncoder{{}, {}}
	var transports []*recordingTransport
	for i := range 2 * perFormat {
		tr := &recordingTransport{enc: formats[i%2]}
		s, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, tr)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		transports = append(transports, tr)
	}
	before := []int64{formats[0].calls.Load(), formats[1].calls.Load()}

	n, err := h.Broadcast(ctx, "once", "")
	if err != nil || n != 2*perFormat {
		t.Fatalf("Broadcast = %d, %v; want %d recipients", n, err, 2*perFormat)
	}
	want := "admin_broadcast:once"
	first := make([][]byte, 2)
	deadline := time.Now().Add(5 * time.Second)
	for i, tr := range transports {
		var b []byte
		for b = tr.find(want); b == nil; b = tr.find(want) {
			if time.Now().After(deadline) {
				t.Fatalf("session %d never got %q", i, want)
			}
			time.Sleep(time.Millisecond)
		}
		if first[i%2] == nil {
			first[i%2] = b
		} else if &b[0] != &first[i%2][0] {
			t.Errorf("session %d got its own copy of the frame, want the bytes shared by its format", i)
		}
	}
	for i, f := range formats {
		if got := f.calls.Load() - before[i]; got != 1 {
			t.Errorf("format %d encoded the broadcast %d times for %d sessions, want once", i, got, perFormat)
		}
	}
}

// A connection's first frame is its welcome, even while other users connect
// and their user_joined events are fanned out to the lobby it has just
// entered.
func TestWelcomeComesFirst(t *testing.T) {
	const n = 200
	ctx := context.Background()
	h := hub.New(hub.Config{}, memory.New())
	transports := make([]*recordingTransport, n)
	sessions := make([]*hub.Session, n)
	var wg sync.WaitGroup
	for i := range n {
		transports[i] = &recordingTransport{enc: &countingEncoder{}}
		wg.Go(func() {
			user := fmt.Sprintf("u%d", i)
			s, err := h.Open(ctx, hub.Identity{UserID: user, Name: user}, transports[i])
			if err != nil {
				t.Error(err)
				return
			}
			sessions[i] = s
		})
	}
	wg.Wait()
	for _, s := range sessions {
		if s != nil {
			defer s.Close(ctx)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for i, tr := range transports {
		for {
			tr.mu.Lock()
			var first string
			if len(tr.frames) > 0 {
				first = string(tr.frames[0])
			}
			tr.mu.Unlock()
			if first != "" {
				if want := fmt.Sprintf("system:Welcome u%d", i); first != want {
					t.Errorf("connection %d: first frame %q, want %q", i, first, want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("connection %d got no frame", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// failingEncoder cannot encode a welcome.
type failingEncoder struct{}

func (failingEncoder) Encode(ev *hub.Event) ([]byte, error) {
	if ev.Kind == hub.KindSystem {
		return nil, errors.New("no welcome in this format")
	}
	return []byte(ev.Kind.String()), nil
}

// A session that cannot be welcomed is not opened: Open fails, and the
// user is not counted present.
func TestOpenFailsWithoutAWelcome(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{}, memory.New())
	s, err := h.Open(ctx, hub.Identity{UserID: "u", Name: "u"}, &recordingTransport{enc: failingEncoder{}})
	if err == nil {
		s.Close(ctx)
		t.Fatal("Open with a welcome that cannot be encoded succeeded")
	}
	st, err := h.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalConnections != 0 || h.Sessions() != 0 {
		t.Errorf("after a failed Open: %d connections in the cluster, %d sessions, want none", st.TotalConnections, h.Sessions())
	}
}
