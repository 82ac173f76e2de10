package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// expiryTransport records the reason the hub closed it with.
type expiryTransport struct {
	recordingTransport
	closed chan hub.Disconnect
}

func newExpiryTransport() *expiryTransport {
	return &expiryTransport{recordingTransport: recordingTransport{enc: &countingEncoder{}}, closed: make(chan hub.Disconnect, 1)}
}

func (t *expiryTransport) Close(d hub.Disconnect) {
	select {
	case t.closed <- d:
	default:
	}
}

// tokens verifies "alice-later" as alice's token expiring in an hour.
type tokens struct{}

func (tokens) Verify(tok string) (hub.Identity, error) {
	if tok == "alice-later" {
		return hub.Identity{UserID: "alice", Name: "alice", Expires: time.Now().Add(time.Hour)}, nil
	}
	return hub.Identity{}, errors.New("bad token")
}

// A session ends with DisconnectExpired when its token expires; one
// refreshed first does not; a closed session's timer does nothing.
func TestSessionsEndWithTheirToken(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{TokenLeeway: -1, Tokens: tokens{}}, memory.New())
	soon := time.Now().Add(100 * time.Millisecond)
	open := func() (*hub.Session, *expiryTransport) {
		tr := newExpiryTransport()
		s, err := h.Open(ctx, hub.Identity{UserID: "alice", Name: "alice", Expires: soon}, tr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(ctx) })
		return s, tr
	}
	_, tr1 := open()
	refreshed, tr2 := open()
	closed, tr3 := open()
	refreshed.Handle(ctx, hub.Command{Kind: hub.CmdRefresh, Token: "alice-later"})
	closed.Close(ctx)

	select {
	case d := <-tr1.closed:
		if d.Code != hub.DisconnectExpired {
			t.Errorf("expiring session closed with %+v, want DisconnectExpired", d)
		}
		if time.Now().Before(soon) {
			t.Error("session closed before its token expired")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("expiring session still open 5s after its token expired")
	}
	// The other two had the same deadline: by now it has passed for them too.
	time.Sleep(200 * time.Millisecond)
	for name, tr := range map[string]*expiryTransport{"refreshed": tr2, "closed": tr3} {
		select {
		case d := <-tr.closed:
			t.Errorf("%s session closed with %+v, want left alone", name, d)
		default:
		}
	}
	if tr2.find("refreshed:") == nil {
		t.Error("refreshed session got no refreshed event")
	}
}

// rightsTokens verifies each of its keys as the identity it maps to.
type rightsTokens map[string]hub.Identity

func (r rightsTokens) Verify(tok string) (hub.Identity, error) {
	if who, ok := r[tok]; ok {
		return who, nil
	}
	return hub.Identity{}, errors.New("bad token")
}

// A refresh whose token claims the same rooms in another order is taken;
// one whose rooms claim differs, with the same user and admin role, is
// refused with forbidden.
func TestRefreshComparesTheRoomsClaim(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	alice := func(rooms ...string) hub.Identity {
		return hub.Identity{UserID: "alice", Name: "alice", Rooms: rooms, Expires: later}
	}
	h := hub.New(hub.Config{Tokens: rightsTokens{
		"reordered": alice("team-*", "ops"),
		"widened":   alice("ops", "team-*", "hr"),
		"narrowed":  alice("ops"),
	}}, memory.New())
	tr := &closingTransport{}
	s, err := h.Open(ctx, alice("ops", "team-*"), tr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	answers := func() int { return tr.count("refreshed ") + tr.count("error ") }
	for i, tc := range []struct{ token, want string }{
		{"reordered", "refreshed  reordered"},
		{"widened", "error forbidden widened"},
		{"narrowed", "error forbidden narrowed"},
	} {
		s.Handle(ctx, hub.Command{Kind: hub.CmdRefresh, ID: tc.token, Token: tc.token})
		waitFor(t, "the answer to "+tc.token, func() bool { return answers() > i })
		if n := tr.count(tc.want); n != 1 {
			t.Errorf("refresh with the %s rooms claim: %d frames %q, want 1", tc.token, n, tc.want)
		}
	}
}
