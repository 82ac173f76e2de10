package nodetest

import (
	"testing"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// WaitTimeout bounds every wait for a frame in tests.
const WaitTimeout = 5 * time.Second

// Await skips the frames of session s (of the client called name) until one
// satisfies match, and returns it. It fails the test if the session ends or
// no such frame comes within WaitTimeout. Call it from the test's goroutine.
func Await(t testing.TB, name string, s *client.Session, what string, match func(*chatv1.ServerFrame) bool) *chatv1.ServerFrame {
	t.Helper()
	deadline := time.After(WaitTimeout)
	for {
		select {
		case f, ok := <-s.Events():
			if !ok {
				t.Fatalf("%s: session ended waiting for %s: %v", name, what, s.Err())
			}
			if match(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("%s: no %s within %v", name, what, WaitTimeout)
			return nil
		}
	}
}

// Join joins session s (of user userID, the client called name) to room and
// waits for its own room_joined.
func Join(t testing.TB, name string, s *client.Session, room, userID string) {
	t.Helper()
	if err := s.Join(room); err != nil {
		t.Fatalf("%s: join %s: %v", name, room, err)
	}
	Await(t, name, s, "room_joined "+room, func(f *chatv1.ServerFrame) bool {
		j := f.GetRoomJoined()
		return j != nil && j.Room == room && j.UserId == userID
	})
}

// Ended waits at most within for session s (of the client called name) to
// end, skipping its frames, and returns the status it ended with. It fails
// the test if the session is still open by then.
func Ended(t testing.TB, name string, s *client.Session, within time.Duration) error {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case _, ok := <-s.Events():
			if !ok {
				return s.Err()
			}
		case <-deadline:
			t.Fatalf("%s: session still open after %v", name, within)
			return nil
		}
	}
}
