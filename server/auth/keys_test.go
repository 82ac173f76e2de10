package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tertulia/tertulia/server/auth"
)

// signer is a private key and the algorithm it signs with.
type signer struct {
	alg jwt.SigningMethod
	key crypto.Signer
}

func newSigners(t *testing.T) []signer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []signer{{jwt.SigningMethodRS256, rk}, {jwt.SigningMethodES256, ek}, {jwt.SigningMethodEdDSA, dk}}
}

// token signs claims for sub "alice" valid for an hour, with header kid if not "".
func (s signer) token(t *testing.T, kid string) string {
	t.Helper()
	return signWith(t, s.alg, s.key, kid, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
}

func signWith(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pemFile writes the public halves of keys, PEM-encoded, to a file and returns its path.
func pemFile(t *testing.T, keys ...crypto.Signer) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		pem.Encode(&b, &pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	p := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublicKeysFromPEMFiles(t *testing.T) {
	signers := newSigners(t)
	keys, err := auth.ReadPublicKeyFiles(pemFile(t, signers[0].key), pemFile(t, signers[1].key, signers[2].key))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{PublicKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, s := range signers {
		t.Run(s.alg.Alg(), func(t *testing.T) {
			if who, err := a.Verify(s.token(t, "")); err != nil || who.UserID != "alice" {
				t.Errorf("Verify = %+v, %v; want alice", who, err)
			}
			other := newSigners(t) // same algorithms, keys nobody configured
			for _, o := range other {
				if o.alg == s.alg {
					if _, err := a.Verify(o.token(t, "")); !errors.Is(err, auth.ErrInvalidToken) {
						t.Errorf("token of an unknown %s key: %v, want ErrInvalidToken", o.alg.Alg(), err)
					}
				}
			}
		})
	}
	if _, err := a.Issue("alice", false); err == nil {
		t.Error("Issue without a secret succeeded, want an error")
	}
}

func TestAlgorithmIsPinnedToTheKey(t *testing.T) {
	signers := newSigners(t)
	rsaKey := signers[0].key.(*rsa.PrivateKey)
	der, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	keys, err := auth.ParsePublicKeys(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Secret: secret, PublicKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	claims := func() jwt.MapClaims { return jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix()} }
	for _, tc := range []struct {
		name  string
		token string
	}{
		// The classic confusion: the RSA public key, as bytes, used as an HMAC secret.
		{"HS256 signed with the RSA public key", signWith(t, jwt.SigningMethodHS256, pubPEM, "", claims())},
		{"HS256 signed with the DER public key", signWith(t, jwt.SigningMethodHS256, der, "", claims())},
		{"PS256 by the RS256 key", signWith(t, jwt.SigningMethodPS256, rsaKey, "", claims())},
		{"RS512 by the RS256 key", signWith(t, jwt.SigningMethodRS512, rsaKey, "", claims())},
		{"HS384 with the HS256 secret", signWith(t, jwt.SigningMethodHS384, secret, "", claims())},
		{"ES256 with no ECDSA key configured", signers[1].token(t, "")},
		{"EdDSA with no Ed25519 key configured", signers[2].token(t, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.Verify(tc.token); !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
	// Both keys still do their own job.
	if _, err := a.Verify(signWith(t, jwt.SigningMethodRS256, rsaKey, "", claims())); err != nil {
		t.Errorf("RS256 token: %v", err)
	}
	if _, err := a.Verify(signWith(t, jwt.SigningMethodHS256, secret, "", claims())); err != nil {
		t.Errorf("HS256 token: %v", err)
	}
}

func TestPreviousSecretDuringRotation(t *testing.T) {
	old := []byte("the-old-secret-0123456789abcdef")
	before, _ := auth.New(auth.Config{Secret: old})
	tok, err := before.Issue("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	during, err := auth.New(auth.Config{Secret: secret, PreviousSecret: old})
	if err != nil {
		t.Fatal(err)
	}
	if who, err := during.Verify(tok); err != nil || who.UserID != "alice" {
		t.Errorf("token of the previous secret during rotation: %+v, %v; want alice", who, err)
	}
	fresh, _ := during.Issue("bob", false)
	if _, err := before.Verify(fresh); err == nil {
		t.Error("a token minted during rotation verifies with the old secret alone: it was signed with the previous secret, want the new one")
	}
	after, _ := auth.New(auth.Config{Secret: secret})
	if _, err := after.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token of the old secret after rotation: %v, want ErrInvalidToken", err)
	}
	if _, err := auth.New(auth.Config{Secret: secret, PreviousSecret: []byte("short")}); err == nil {
		t.Error("New with a 5-byte previous secret succeeded, want an error")
	}
}

// idp is an identity provider's JWKS endpoint whose keys a test changes.
type idp struct {
	srv     *httptest.Server
	fetches atomic.Int64
	down    atomic.Bool // answer 503
	pad     atomic.Bool // add 2 MiB of padding to the set
	mu      sync.Mutex  // protects keys
	keys    []jwkset.JWKMarshal
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	p := &idp{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		set := struct {
			jwkset.JWKSMarshal
			Pad string `json:"pad,omitempty"`
		}{JWKSMarshal: jwkset.JWKSMarshal{Keys: p.keys}}
		p.mu.Unlock()
		if p.pad.Load() {
			set.Pad = strings.Repeat("x", 2<<20)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// publish replaces the set with the public halves of signers, named by kids.
func (p *idp) publish(t *testing.T, kids []string, signers ...signer) {
	t.Helper()
	var keys []jwkset.JWKMarshal
	for i, s := range signers {
		j, err := jwkset.NewJWKFromKey(s.key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kids[i]}})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, j.Marshal())
	}
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func newJWKSAuth(t *testing.T, url string, refetch time.Duration) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Config{JWKSURL: url, JWKSRefetchInterval: refetch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func TestJWKSKeys(t *testing.T) {
	signers := newSigners(t)
	p := newIDP(t)
	p.publish(t, []string{"rsa", "ec", "ed"}, signers...)
	a := newJWKSAuth(t, p.srv.URL, time.Hour)
	for _, s := range signers {
		t.Run(s.alg.Alg(), func(t *testing.T) {
			kid := map[string]string{"RS256": "rsa", "ES256": "ec", "EdDSA": "ed"}[s.alg.Alg()]
			if who, err := a.Verify(s.token(t, kid)); err != nil || who.UserID != "alice" {
				t.Errorf("token with kid %q: %+v, %v; want alice", kid, who, err)
			}
			if _, err := a.Verify(s.token(t, "")); err != nil {
				t.Errorf("token without kid: %v, want it verified by the key of its algorithm", err)
			}
		})
	}
	// A token naming one key but signed by another, of another algorithm.
	if _, err := a.Verify(signers[1].token(t, "rsa")); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("ES256 token naming the RSA key: %v, want ErrInvalidToken", err)
	}
	if _, err := a.Verify(signWith(t, jwt.SigningMethodPS256, signers[0].key, "rsa", jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix()})); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("PS256 token by the RS256 key: %v, want ErrInvalidToken", err)
	}
	if n := p.fetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times for known kids, want 1", n)
	}
}

func TestJWKSUnknownKidRefetchIsBounded(t *testing.T) {
	signers := newSigners(t)
	p := newIDP(t)
	p.publish(t, []string{"k1"}, signers[0])
	a := newJWKSAuth(t, p.srv.URL, time.Hour)
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("fetches at start = %d, want 1", n)
	}
	for i := range 50 {
		kid := "made-up-" + string(rune('a'+i%26))
		if _, err := a.Verify(signers[0].token(t, kid)); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("unknown kid %q: %v, want ErrInvalidToken", kid, err)
		}
	}
	if n := p.fetches.Load(); n != 2 {
		t.Errorf("fetches after 50 unknown kids = %d, want 2 (the start and one refetch)", n)
	}
	// The known key still works, without a fetch.
	if _, err := a.Verify(signers[0].token(t, "k1")); err != nil {
		t.Errorf("known kid: %v", err)
	}
	if n := p.fetches.Load(); n != 2 {
		t.Errorf("fetches after a known kid = %d, want 2", n)
	}
}

func TestJWKSRotatedKeyWorksWithoutRestart(t *testing.T) {
	signers := newSigners(t)
	p := newIDP(t)
	p.publish(t, []string{"2026-01"}, signers[0])
	a := newJWKSAuth(t, p.srv.URL, time.Hour)
	if _, err := a.Verify(signers[0].token(t, "2026-01")); err != nil {
		t.Fatalf("first key: %v", err)
	}
	// The provider rotates: a new key, of another type, the old one gone.
	p.publish(t, []string{"2026-02"}, signers[1])
	if who, err := a.Verify(signers[1].token(t, "2026-02")); err != nil || who.UserID != "alice" {
		t.Errorf("rotated key: %+v, %v; want alice", who, err)
	}
	if n := p.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
	if _, err := a.Verify(signers[0].token(t, "2026-01")); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token of the retired key: %v, want ErrInvalidToken", err)
	}
}

func TestJWKSDownAtStartIsFetchedLater(t *testing.T) {
	signers := newSigners(t)
	p := newIDP(t)
	p.publish(t, []string{"k"}, signers[2])
	p.down.Store(true)
	// An unreachable provider does not stop the server from starting...
	a := newJWKSAuth(t, p.srv.URL, time.Hour)
	p.down.Store(false)
	// ...and its keys are fetched when a token needs them.
	if who, err := a.Verify(signers[2].token(t, "k")); err != nil || who.UserID != "alice" {
		t.Errorf("EdDSA via JWKS after the provider came back: %+v, %v; want alice", who, err)
	}
}

func TestJWKSTooLargeIsRefused(t *testing.T) {
	signers := newSigners(t)
	p := newIDP(t)
	p.publish(t, []string{"k"}, signers[0])
	p.pad.Store(true)
	a := newJWKSAuth(t, p.srv.URL, time.Hour)
	if _, err := a.Verify(signers[0].token(t, "k")); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("key from a set over 1 MiB: %v, want ErrInvalidToken (the set refused)", err)
	}
}
