package auth_test

import (
	"errors"
	"fmt"
	"strings"
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
		{"exp a string", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": "9999999999"})},
		{"nbf a string", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": exp(time.Hour), "nbf": "0"})},
		{"iat a string", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": exp(time.Hour), "iat": "0"})},
		{"exp null", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": nil})},
		{"iat in the future beyond leeway", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": exp(2 * time.Hour), "iat": exp(time.Hour)})},
		// A name must not break or reorder the text around it on other
		// members' screens, nor be longer than an administrator may name.
		{"sub over 256 bytes", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": strings.Repeat("a", 257), "exp": exp(time.Hour)})},
		{"sub with a NUL", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a\x00b", "exp": exp(time.Hour)})},
		{"username with a line break", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "username": "eve\nadmin: hi", "exp": exp(time.Hour)})},
		{"username with a right-to-left override", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "username": "eve\u202egnp.exe", "exp": exp(time.Hour)})},
		{"sub with an isolate", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a\u2067b", "exp": exp(time.Hour)})},
		{"sub of an anonymous guest", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "guest-1a2b3c4d", "exp": exp(time.Hour)})},
		{"exp past the year 9999", sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": int64(1e18)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.Verify(tc.token); !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
	// Names of every script pass, with the format characters they need:
	// Persian's zero-width non-joiner, an emoji sequence's joiner.
	for _, name := range []string{"می\u200cخواهم", "👩\u200d👩\u200d👧", "José Núñez", strings.Repeat("a", 256)} {
		who, err := a.Verify(sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": name, "username": name, "exp": exp(time.Hour)}))
		if err != nil || who.UserID != name || who.Name != name {
			t.Errorf("token for %q: %+v, %v; want accepted with that name", name, who, err)
		}
	}
	// The last second RFC 3339 can write is a valid exp; the next is not.
	if _, err := a.Verify(sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": 253402300799})); err != nil {
		t.Errorf("exp 9999-12-31T23:59:59Z: %v, want accepted", err)
	}
	if _, err := a.Verify(sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": 253402300800})); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("exp 10000-01-01T00:00:00Z: %v, want ErrInvalidToken", err)
	}
	// Within the leeway an expired token still passes: clocks drift.
	if _, err := a.Verify(sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": exp(0)})); err != nil {
		t.Errorf("token expiring now, 1s leeway: %v, want accepted", err)
	}
}

func TestOversizeTokenIsRefusedBeforeParsing(t *testing.T) {
	a, _ := auth.New(auth.Config{Secret: secret, MaxTokenBytes: 1024})
	claims := func(n int) jwt.MapClaims {
		return jwt.MapClaims{"sub": "a", "jti": strings.Repeat("x", n), "exp": time.Now().Add(time.Hour).Unix()}
	}
	small, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(500)).SignedString(secret)
	if _, err := a.Verify(small); err != nil {
		t.Errorf("%d-byte token, 1024 allowed: %v", len(small), err)
	}
	big, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(1000)).SignedString(secret)
	if _, err := a.Verify(big); !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), "over the limit of 1024") {
		t.Errorf("%d-byte valid token, 1024 allowed: %v, want ErrInvalidToken saying the limit", len(big), err)
	}
	// Garbage is refused for its size, not its content: it is never parsed.
	if _, err := a.Verify(strings.Repeat("a", 1<<20)); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("1 MiB of garbage: %v, want refused for its size", err)
	}
	def, _ := auth.New(auth.Config{Secret: secret})
	eight, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(auth.DefaultMaxTokenBytes)).SignedString(secret)
	if _, err := def.Verify(eight); err == nil || !strings.Contains(err.Error(), "over the limit of 8192") {
		t.Errorf("%d-byte token, default limit: %v, want refused at 8192", len(eight), err)
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

// A token verified once is still refused once it expires: remembering it
// does not outlive its exp.
func TestVerifiedTokenExpires(t *testing.T) {
	a, err := auth.New(auth.Config{Secret: secret, Leeway: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": exp.Unix()}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if who, err := a.Verify(tok); err != nil || who.UserID != "alice" {
			t.Fatalf("Verify before exp = %+v, %v; want alice", who, err)
		}
	}
	time.Sleep(time.Until(exp) + 10*time.Millisecond) // the clock itself is what is tested
	if _, err := a.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Verify after exp = %v; want ErrInvalidToken", err)
	}
}

// BenchmarkVerify is the cost of checking one connection's token: one
// seen before (a reconnect), and one seen for the first time.
func BenchmarkVerify(b *testing.B) {
	newAuth := func() *auth.Authenticator {
		a, err := auth.New(auth.Config{Secret: secret})
		if err != nil {
			b.Fatal(err)
		}
		return a
	}
	b.Run("seen", func(b *testing.B) {
		a := newAuth()
		tok, err := a.Issue("alice", false, "team:*")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		signer := newAuth()
		toks := make([]string, 1000)
		for i := range toks {
			toks[i], _ = signer.Issue(fmt.Sprintf("user-%d", i), false, "team:*")
		}
		b.ReportAllocs()
		var a *auth.Authenticator
		i := 0
		for b.Loop() {
			if i%len(toks) == 0 {
				a = newAuth() // nothing seen yet
			}
			if _, err := a.Verify(toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
