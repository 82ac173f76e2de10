package node_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// shortLived starts a node whose sessions end the moment their token
// expires (leeway 1 ms), and returns a minter of tokens of any lifetime.
func shortLived(t *testing.T) (*nodetest.Server, func(user string, ttl time.Duration) string) {
	t.Helper()
	srv := nodetest.Start(t, node.Config{AllowAnonymous: true, JWT: auth.Config{Secret: nodetest.Secret, Leeway: time.Millisecond}})
	return srv, func(user string, ttl time.Duration) string {
		a, err := auth.New(auth.Config{Secret: nodetest.Secret, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.Issue(user, false)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// connectWith opens a session with token and waits for its welcome.
func connectWith(t *testing.T, srv *nodetest.Server, name, token string) *user {
	t.Helper()
	s, err := dial(t, srv, token).Connect(context.Background())
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	u := &user{t: t, name: name, s: s}
	u.welcome = u.await("welcome", func(f *chatv1.ServerFrame) bool { return f.GetSystem() != nil }).GetSystem()
	return u
}

// ended waits for the session to end and returns its status.
func (u *user) ended() error {
	u.t.Helper()
	return nodetest.Ended(u.t, u.name, u.s, waitTimeout)
}

// A gRPC session whose token expires ends with Unauthenticated, reason
// token_expired; its welcome said when.
func TestTokenExpiryEndsGRPCSession(t *testing.T) {
	srv, mint := shortLived(t)
	u := connectWith(t, srv, "alice", mint("alice", 2*time.Second))
	exp := u.welcome.GetExpiresAt().AsTime()
	if d := time.Until(exp); d > 2*time.Second || d < -time.Second {
		t.Fatalf("welcome expires_at = %v, want about 2s from now", exp)
	}
	err := u.ended()
	if status.Code(err) != codes.Unauthenticated || client.Reason(err) != client.ReasonTokenExpired {
		t.Errorf("session ended with %v (reason %q), want Unauthenticated, token_expired", err, client.Reason(err))
	}
	if time.Now().Before(exp) {
		t.Error("session ended before its token expired")
	}
}

// Refreshed before its token expires, a gRPC session goes on past it; a
// refresh for another user is refused and the session goes on.
func TestRefreshKeepsGRPCSession(t *testing.T) {
	srv, mint := shortLived(t)
	u := connectWith(t, srv, "alice", mint("alice", 2*time.Second))
	first := u.welcome.GetExpiresAt().AsTime()
	guest := connectWith(t, srv, "guest", "")
	if guest.welcome.GetExpiresAt() != nil {
		t.Errorf("guest welcome expires_at = %v, want none", guest.welcome.GetExpiresAt())
	}

	guest.must(guest.s.Refresh(mint("guest", time.Hour)))
	if e := guest.await("refusal", func(f *chatv1.ServerFrame) bool { return f.GetError() != nil }).GetError(); e.Code != "forbidden" {
		t.Errorf("guest refresh: error %q, want forbidden", e.Code)
	}
	u.must(u.s.Refresh(mint("mallory", time.Hour)))
	e := u.await("refusal", func(f *chatv1.ServerFrame) bool { return f.GetError() != nil }).GetError()
	if e.Code != "forbidden" {
		t.Errorf("refresh with mallory's token: error %q, want forbidden", e.Code)
	}
	u.must(u.s.Refresh(mint("alice", time.Hour)))
	r := u.await("refreshed", func(f *chatv1.ServerFrame) bool { return f.GetRefreshed() != nil }).GetRefreshed()
	if time.Until(r.GetExpiresAt().AsTime()) < 50*time.Minute {
		t.Fatalf("refreshed expires_at = %v, want an hour from now", r.GetExpiresAt().AsTime())
	}
	time.Sleep(time.Until(first.Add(time.Second)))
	u.must(u.s.Send("", "still here"))
	u.await("own message after the first expiry", isMessage("still here"))
}

// A refresh does not change a session's rights: a token of the same user
// that grants another admin role is refused with forbidden, and the
// session still ends with its first token.
func TestRefreshWithOtherRightsIsRefused(t *testing.T) {
	srv, mint := shortLived(t)
	a, err := auth.New(auth.Config{Secret: nodetest.Secret, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	demoted, err := a.Issue("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	promoted, err := a.Issue("bob", true)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := auth.New(auth.Config{Secret: nodetest.Secret, TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	aliceTok, err := admin.Issue("alice", true)
	if err != nil {
		t.Fatal(err)
	}
	alice := connectWith(t, srv, "alice", aliceTok)
	bob := connectWith(t, srv, "bob", mint("bob", time.Hour))
	for _, tc := range []struct {
		u     *user
		token string
	}{{alice, demoted}, {bob, promoted}} {
		tc.u.must(tc.u.s.Refresh(tc.token))
		e := tc.u.await("refusal", func(f *chatv1.ServerFrame) bool { return f.GetError() != nil }).GetError()
		if e.Code != "forbidden" {
			t.Errorf("%s's refresh with other rights: error %q, want forbidden", tc.u.name, e.Code)
		}
	}
	if st, _ := status.FromError(alice.ended()); st.Code() != codes.Unauthenticated {
		t.Errorf("alice's session ended with %v, want Unauthenticated at her first token's expiry", st)
	}
}

// Only admins moderate: other users get PermissionDenied, callers without
// a token Unauthenticated, over gRPC and REST (403, 401).
func TestModerationNeedsAdmin(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		token string
		code  codes.Code
		http  int
	}{
		{"member", srv.Token(t, "bob", false), codes.PermissionDenied, 403},
		{"no token", "", codes.Unauthenticated, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			admin := chatv1.NewAdminServiceClient(dial(t, srv, "").Conn())
			actx := ctx
			if tc.token != "" {
				actx = withBearer(ctx, tc.token)
			}
			calls := map[string]func() error{
				"DisconnectUser": func() error {
					_, err := admin.DisconnectUser(actx, &chatv1.DisconnectUserRequest{User: "alice"})
					return err
				},
				"KickUser": func() error {
					_, err := admin.KickUser(actx, &chatv1.KickUserRequest{User: "alice", Room: "lounge"})
					return err
				},
				"BanUser": func() error {
					_, err := admin.BanUser(actx, &chatv1.BanUserRequest{User: "alice", Duration: "1m"})
					return err
				},
				"ListBans": func() error { _, err := admin.ListBans(actx, &chatv1.ListBansRequest{}); return err },
				"LiftBan": func() error {
					_, err := admin.LiftBan(actx, &chatv1.LiftBanRequest{User: "alice"})
					return err
				},
			}
			for name, call := range calls {
				if err := call(); status.Code(err) != tc.code {
					t.Errorf("%s: %v, want %v", name, err, tc.code)
				}
			}
			for _, r := range []struct{ method, path, body string }{
				{"POST", "/api/v1/websocket/users/alice/disconnect", `{"reason":"x"}`},
				{"POST", "/api/v1/websocket/rooms/lounge/kick", `{"user":"alice"}`},
				{"POST", "/api/v1/websocket/bans", `{"user":"alice","duration":"1m"}`},
				{"GET", "/api/v1/websocket/bans", ""},
				{"DELETE", "/api/v1/websocket/bans/alice", ""},
			} {
				if got := restStatus(t, srv, r.method, r.path, r.body, tc.token); got != tc.http {
					t.Errorf("%s %s: HTTP %d, want %d", r.method, r.path, got, tc.http)
				}
			}
		})
	}
	if bans, err := srv.Node.Hub().Bans(ctx); err != nil || len(bans) != 0 {
		t.Errorf("bans after refused calls = %v, %v; want none", bans, err)
	}
}
