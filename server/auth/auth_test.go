package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/tertulia/tertulia/server/auth"
)

var secret = []byte("auth-test-secret-0123456789abcdef")

func TestIssueThenVerify(t *testing.T) {
	a, err := auth.New(auth.Config{Secret: secret, Issuer: "tertulia", Audience: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	for _, admin := range []bool{false, true} {
		tok, err := a.Issue("alice", admin)
		if err != nil {
			t.Fatal(err)
		}
		who, err := a.Verify(tok)
		if err != nil || who.UserID != "alice" || who.Name != "alice" || who.Admin != admin || who.Guest {
			t.Errorf("Verify(Issue(alice, %v)) = %+v, %v; want alice, admin %v", admin, who, err, admin)
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	a, _ := auth.New(auth.Config{Secret: secret, Leeway: time.Second})
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := func(d time.Duration) int64 { return time.Now().Add(d).Unix() }
	for _, tc := range []struct{ name, token string }{
		{"expired beyond leeway", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": exp(-5 * time.Second)})},
		{"no sub", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": exp(time.Hour)})},
		{"not yet valid", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": exp(time.Hour), "nbf": exp(time.Minute)})},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "a", "exp": exp(time.Hour)})},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.Verify(tc.token); !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
	// Within the leeway an expired token still passes: clocks drift.
	if _, err := a.Verify(sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": exp(0)})); err != nil {
		t.Errorf("token expiring now, 1s leeway: %v, want accepted", err)
	}
}

func TestNewNeedsASecret(t *testing.T) {
	if _, err := auth.New(auth.Config{Secret: []byte("short")}); err == nil {
		t.Error("New with a 5-byte secret succeeded, want an error")
	}
}

func TestGate(t *testing.T) {
	a, _ := auth.New(auth.Config{Secret: secret})
	if _, err := (auth.Gate{Auth: a}).Session(""); !errors.Is(err, auth.ErrTokenRequired) {
		t.Errorf("no token, no guests: %v, want ErrTokenRequired", err)
	}
	g1, err1 := (auth.Gate{Auth: a, AllowAnonymous: true}).Session("")
	g2, err2 := (auth.Gate{Auth: a, AllowAnonymous: true}).Session("")
	if err1 != nil || err2 != nil || !g1.Guest || g1.UserID == g2.UserID {
		t.Errorf("guests = %+v, %+v (%v, %v); want two distinct guests", g1, g2, err1, err2)
	}
	if _, err := (auth.Gate{Auth: a, AllowAnonymous: true}).Session("garbage"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("bad token with guests allowed: %v, want ErrInvalidToken (a bad token is never a guest)", err)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
