package bridge_test

import (
	"testing"
	"time"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// shortLived is a node whose sessions end the moment their token expires
// (leeway 1 ms), and a way to mint tokens of any lifetime for it.
func shortLived(t *testing.T, m mode) (*target, func(user string, ttl time.Duration) string) {
	t.Helper()
	tg := start(t, m, node.Config{JWT: auth.Config{Secret: nodetest.Secret, Leeway: time.Millisecond}}, bridge.Config{})
	mint := func(user string, ttl time.Duration) string {
		return tokenFrom(t, auth.Config{Secret: nodetest.Secret, TTL: ttl}, user)
	}
	return tg, mint
}

// A session whose token expires is closed with 4001 "token expired"; its
// welcome said when.
func TestTokenExpiryCloses4001(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg, mint := shortLived(t, m)
		u := connect(t, tg, "alice", "/api/v1/ws/authenticated?token="+mint("alice", 2*time.Second), dialOpts{})
		exp, err := time.Parse(time.RFC3339, u.welcome.str("expires_at"))
		if err != nil || time.Until(exp) > 2*time.Second || time.Until(exp) < -time.Second {
			t.Fatalf("welcome expires_at = %q (%v), want about 2s from now", u.welcome.str("expires_at"), err)
		}
		code, reason := u.closed()
		if code != bridge.CloseTokenExpired || reason != "token expired" {
			t.Errorf("close = %d %q, want 4001 \"token expired\"", code, reason)
		}
		if late := time.Since(exp); late < 0 {
			t.Errorf("closed %v before the token expired", -late)
		}
	})
}

// A refresh for the same user moves the session's end past its first
// token's expiry; a refresh with another user's token or a bad one is
// refused and changes nothing.
func TestRefreshOutlivesTheFirstToken(t *testing.T) {
	runModes(t, func(t *testing.T, m mode) {
		tg, mint := shortLived(t, m)
		u := connect(t, tg, "alice", "/api/v1/ws/authenticated?token="+mint("alice", 2*time.Second), dialOpts{})
		first, _ := time.Parse(time.RFC3339, u.welcome.str("expires_at"))

		u.sendJSON(map[string]string{"type": "refresh", "id": "r1", "token": mint("bob", time.Hour)})
		if f := u.await("refusal of bob's token", isError("forbidden")); f.str("id") != "r1" {
			t.Errorf("refusal = %v, want id r1", f)
		}
		u.sendJSON(map[string]string{"type": "refresh", "id": "r2", "token": "not-a-jwt"})
		u.await("refusal of a bad token", isError("invalid_token"))

		u.sendJSON(map[string]string{"type": "refresh", "id": "r3", "token": mint("alice", time.Hour)})
		f := u.await("refreshed", isType("refreshed"))
		exp, err := time.Parse(time.RFC3339, f.str("expires_at"))
		if err != nil || f.str("id") != "r3" || time.Until(exp) < 50*time.Minute {
			t.Fatalf("refreshed = %v, want id r3 and expires_at an hour from now", f)
		}
		// Past the first token's expiry, the session goes on.
		time.Sleep(time.Until(first.Add(time.Second)))
		u.sendJSON(map[string]string{"message": "still here"})
		u.await("own message after the first expiry", isMessage("still here"))
	})
}
