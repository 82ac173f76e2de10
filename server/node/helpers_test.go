package node_test

import (
	"context"
	"testing"
	"time"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// waitTimeout bounds every wait for an event.
const waitTimeout = 5 * time.Second

// user is one connected test client.
type user struct {
	t    testing.TB
	name string
	c    *client.Client
	s    *client.Session
	// welcome is the system frame the session opened with.
	welcome *chatv1.System
}

func dial(t testing.TB, srv *nodetest.Server, token string) *client.Client {
	t.Helper()
	var opts []client.Option
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	c, err := client.Dial(srv.GRPCAddr, opts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connect opens a session for name (a guest when name is "") and waits for its welcome.
func connect(t testing.TB, srv *nodetest.Server, name string) *user {
	t.Helper()
	tok := ""
	if name != "" {
		tok = srv.Token(t, name, false)
	}
	return connectToken(t, srv, name, tok)
}

// connectToken opens a session presenting tok (a guest's when "") for the
// client called name, and waits for its welcome.
func connectToken(t testing.TB, srv *nodetest.Server, name, tok string) *user {
	t.Helper()
	c := dial(t, srv, tok)
	s, err := c.Connect(context.Background())
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	u := &user{t: t, name: name, c: c, s: s}
	f := u.next()
	if f.GetSystem() == nil {
		t.Fatalf("%s: first frame = %v, want system welcome", name, f)
	}
	u.welcome = f.GetSystem()
	return u
}

// next returns the next frame, failing the test after waitTimeout.
func (u *user) next() *chatv1.ServerFrame {
	u.t.Helper()
	select {
	case f, ok := <-u.s.Events():
		if !ok {
			u.t.Fatalf("%s: session ended: %v", u.name, u.s.Err())
		}
		return f
	case <-time.After(waitTimeout):
		u.t.Fatalf("%s: no frame within %v", u.name, waitTimeout)
		return nil
	}
}

// await skips frames until one satisfies match, and returns it.
func (u *user) await(what string, match func(*chatv1.ServerFrame) bool) *chatv1.ServerFrame {
	u.t.Helper()
	return nodetest.Await(u.t, u.name, u.s, what, match)
}

func (u *user) must(err error) {
	u.t.Helper()
	if err != nil {
		u.t.Fatalf("%s: %v", u.name, err)
	}
}

// join joins room and waits for the session's own room_joined.
func (u *user) join(room string) {
	u.t.Helper()
	nodetest.Join(u.t, u.name, u.s, room, u.welcome.UserId)
}

func isMessage(text string) func(*chatv1.ServerFrame) bool {
	return func(f *chatv1.ServerFrame) bool { return f.GetMessage() != nil && f.GetMessage().Message == text }
}
