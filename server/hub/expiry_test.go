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
