package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// closeRecorder is a transport that notes when, and why, the hub closed it.
type closeRecorder struct {
	recordingTransport

	once   sync.Once
	closed chan struct{}
	at     time.Time
	why    hub.Disconnect
}

func newCloseRecorder() *closeRecorder {
	return &closeRecorder{recordingTransport: recordingTransport{enc: &countingEncoder{}}, closed: make(chan struct{})}
}

func (t *closeRecorder) Close(d hub.Disconnect) {
	t.once.Do(func() {
		t.at, t.why = time.Now(), d
		close(t.closed)
	})
}

// connectMany opens n sessions on h, each closed at the end of the test.
func connectMany(t *testing.T, h *hub.Hub, n int) []*closeRecorder {
	t.Helper()
	out := make([]*closeRecorder, n)
	for i := range out {
		out[i] = newCloseRecorder()
		user := fmt.Sprintf("u%d", i)
		s, err := h.Open(context.Background(), hub.Identity{UserID: user, Name: user}, out[i])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(context.Background()) })
	}
	return out
}

// Shutdown tells every session "service restart", one every spread/n: the
// k-th close comes no sooner than k*spread/n, so most of them come after
// the first tenth of the window; and new sessions are refused.
func TestShutdownSpreadsRestarts(t *testing.T) {
	const n, spread = 20, 400 * time.Millisecond
	h := hub.New(hub.Config{}, memory.New())
	sessions := connectMany(t, h, n)

	start := time.Now()
	h.Shutdown(context.Background(), spread)
	returned := time.Since(start)

	times := make([]time.Duration, n)
	for i, s := range sessions {
		select {
		case <-s.closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("session %d was never closed", i)
		}
		if s.why.Code != hub.DisconnectRestart || s.why.Reason != "service restart" {
			t.Errorf("session %d closed with %+v, want DisconnectRestart %q", i, s.why, "service restart")
		}
		times[i] = s.at.Sub(start)
	}
	early, last := 0, time.Duration(0)
	for _, at := range times {
		if at < spread/10 {
			early++
		}
		last = max(last, at)
	}
	// With one close every spread/n, at most n/10 fit in the first tenth.
	if early > n/10 {
		t.Errorf("%d of %d sessions closed in the first tenth of the window (%v), want at most %d: %v", early, n, spread/10, n/10, times)
	}
	if returned < last {
		t.Errorf("Shutdown returned after %v, before its last close at %v", returned, last)
	}
	if lastDue := spread * (n - 1) / n; returned < lastDue {
		t.Errorf("Shutdown returned after %v, want at least %v (the last session's turn)", returned, lastDue)
	}

	_, err := h.Open(context.Background(), hub.Identity{UserID: "late", Name: "late"}, newCloseRecorder())
	if !errors.Is(err, hub.ErrShuttingDown) {
		t.Errorf("Open during shutdown: %v, want ErrShuttingDown", err)
	}
}

// Once ctx is done, the sessions not yet told are told at once.
func TestShutdownCutShort(t *testing.T) {
	const n = 10
	h := hub.New(hub.Config{}, memory.New())
	sessions := connectMany(t, h, n)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { h.Shutdown(ctx, time.Hour); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown with a done context did not return at once")
	}
	for i, s := range sessions {
		select {
		case <-s.closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("session %d was never closed", i)
		}
	}
}
