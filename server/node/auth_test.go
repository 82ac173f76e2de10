package node_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func TestBadTokensAreRefusedAndChangeNothing(t *testing.T) {
	cfg := node.Config{JWT: auth.Config{Secret: nodetest.Secret, Issuer: "tertulia-test", Audience: "chat"}}
	srv := nodetest.Start(t, cfg)
	ctx := context.Background()
	alice := connect(t, srv, "alice") // a valid token: the baseline works
	alice.join("lobby2")

	good := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "mallory", "username": "mallory", "roles": []string{"admin"},
			"iss": "tertulia-test", "aud": "chat", "exp": time.Now().Add(time.Hour).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	cases := []struct{ name, token string }{
		{"expired", sign(t, jwt.SigningMethodHS256, nodetest.Secret, with("exp", time.Now().Add(-time.Hour).Unix()))},
		{"no exp", sign(t, jwt.SigningMethodHS256, nodetest.Secret, with("exp", nil))},
		{"wrong signature", sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef"), good())},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good())},
		{"other algorithm", sign(t, jwt.SigningMethodHS384, nodetest.Secret, good())},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, nodetest.Secret, with("aud", "other"))},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, nodetest.Secret, with("iss", "evil"))},
		{"exp a string", sign(t, jwt.SigningMethodHS256, nodetest.Secret, with("exp", fmt.Sprint(time.Now().Add(time.Hour).Unix())))},
		{"iat in the future", sign(t, jwt.SigningMethodHS256, nodetest.Secret, with("iat", time.Now().Add(time.Hour).Unix()))},
		{"garbage", "not-a-jwt"},
	}
	observer := dial(t, srv, srv.Token(t, "observer", false))
	before, err := observer.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, srv, tc.token)
			s, err := c.Connect(ctx)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer s.Close()
			for f := range s.Events() {
				t.Errorf("got frame %v, want none", f)
			}
			if status.Code(s.Err()) != codes.Unauthenticated {
				t.Errorf("connect: got %v, want Unauthenticated", s.Err())
			}
			if _, err := c.Broadcast(ctx, "x", ""); status.Code(err) != codes.Unauthenticated {
				t.Errorf("broadcast: got %v, want Unauthenticated", err)
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL("/api/v1/websocket/broadcast?message=x"), nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("REST broadcast: status %d, want 401", resp.StatusCode)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		s, err := dial(t, srv, "").Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for range s.Events() {
		}
		if status.Code(s.Err()) != codes.Unauthenticated {
			t.Errorf("connect without token: got %v, want Unauthenticated", s.Err())
		}
	})

	after, err := observer.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.TotalConnections != before.TotalConnections || after.UniqueUsers != before.UniqueUsers || after.ActiveRooms != before.ActiveRooms {
		t.Errorf("stats after refused tokens = %v, want %v", after, before)
	}
	alice.must(alice.s.Send("lobby2", "still here"))
	alice.await("own message", isMessage("still here"))
}
