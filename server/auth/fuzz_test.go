package auth_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tertulia/tertulia/server/auth"
)

// FuzzVerify feeds Verify arbitrary tokens: it never panics, refuses
// anything over the size bound, and whatever it accepts names a user and
// verifies again to the same identity.
func FuzzVerify(f *testing.F) {
	a, err := auth.New(auth.Config{Secret: secret, MaxTokenBytes: 2048})
	if err != nil {
		f.Fatal(err)
	}
	good, _ := a.Issue("alice", true)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(good[:len(good)-2])
	f.Add(strings.Repeat("x", 4096))
	for _, c := range []jwt.MapClaims{
		{"sub": "a", "exp": "9999999999"},
		{"sub": "a", "exp": 9999999999.5, "iat": -1},
		{"sub": "a", "exp": 9999999999, "nbf": nil, "aud": []any{1}},
		{"sub": 7, "exp": 9999999999},
	} {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
		f.Add(s)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	f.Add(none)
	f.Fuzz(func(t *testing.T, token string) {
		who, err := a.Verify(token)
		if err != nil {
			return
		}
		if len(token) > 2048 {
			t.Fatalf("accepted a %d-byte token over the 2048 bound", len(token))
		}
		if who.UserID == "" {
			t.Fatalf("accepted a token without a user: %+v", who)
		}
		if again, err := a.Verify(token); err != nil || !reflect.DeepEqual(again, who) {
			t.Fatalf("second Verify = %+v, %v; first %+v", again, err, who)
		}
	})
}
