package auth_test

import (
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tertulia/tertulia/server/auth"
)

func TestRoomsClaim(t *testing.T) {
	a, err := auth.New(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	issued, err := a.Issue("alice", false, "team:*", "news:daily")
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	one, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob", "exp": exp, "rooms": "team:*"}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		want        []string
	}{
		{"issued with rooms", issued, []string{"team:*", "news:daily"}},
		{"one string", one, []string{"team:*"}},
	} {
		who, err := a.Verify(tc.token)
		if err != nil || !slices.Equal(who.Rooms, tc.want) {
			t.Errorf("%s: rooms = %q, %v; want %q", tc.name, who.Rooms, err, tc.want)
		}
	}
	bad, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob", "exp": exp, "rooms": 7}).SignedString(secret)
	if _, err := a.Verify(bad); err == nil {
		t.Error("a rooms claim that is a number was accepted, want the token refused")
	}
}
