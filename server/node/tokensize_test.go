package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// wsClose dials the WebSocket at u with d and returns the close frame the
// server ends the connection with.
func wsClose(t *testing.T, d ws.Dialer, u string) (ws.StatusCode, string) {
	t.Helper()
	d.Timeout = waitTimeout
	conn, br, _, err := d.Dial(context.Background(), u)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(waitTimeout))
	rw := struct {
		io.Reader
		io.Writer
	}{conn, conn}
	if br != nil { // what came with the handshake's answer
		rw.Reader = io.MultiReader(br, conn)
	}
	for {
		data, err := wsutil.ReadServerText(rw)
		var closed wsutil.ClosedError
		if errors.As(err, &closed) {
			return closed.Code, closed.Reason
		}
		if err != nil {
			t.Fatalf("read: %v, want a close frame", err)
		}
		t.Errorf("got a %d-byte frame, want a close", len(data))
	}
}

// A token over the size bound is refused on every carrier, with the
// transport's own answer, and a token just under it still works.
func TestOversizeTokenRefusedOnEveryCarrier(t *testing.T) {
	cfg := node.Config{JWT: auth.Config{Secret: nodetest.Secret, MaxTokenBytes: 1024}}
	srv := nodetest.Start(t, cfg)
	pad := func(n int) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "big", "jti": strings.Repeat("b", n),
			"exp": time.Now().Add(time.Hour).Unix()}).SignedString(nodetest.Secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	big := pad(1500) // valid but for its size, and small enough for any header bound
	if len(big) <= 1024 || len(big) > 4096 {
		t.Fatalf("token of %d bytes, want 1025..4096", len(big))
	}
	const why = "over the limit of 1024"

	t.Run("websocket query", func(t *testing.T) {
		code, reason := wsClose(t, ws.Dialer{}, "ws://"+srv.HTTPAddr+"/api/v1/ws?token="+url.QueryEscape(big))
		if code != ws.StatusPolicyViolation || !strings.Contains(reason, why) {
			t.Errorf("close %d %q, want 1008 saying %q", code, reason, why)
		}
	})
	t.Run("websocket subprotocol", func(t *testing.T) {
		d := ws.Dialer{Protocols: []string{bridge.Subprotocol, "bearer." + big}}
		code, reason := wsClose(t, d, "ws://"+srv.HTTPAddr+"/api/v1/ws/authenticated")
		if code != ws.StatusPolicyViolation || !strings.Contains(reason, why) {
			t.Errorf("close %d %q, want 1008 saying %q", code, reason, why)
		}
	})
	t.Run("grpc bearer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		s, err := dial(t, srv, big).Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for range s.Events() {
			t.Error("got a frame, want none")
		}
		if st, _ := status.FromError(s.Err()); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), why) {
			t.Errorf("connect: %v, want Unauthenticated saying %q", s.Err(), why)
		}
	})
	t.Run("rest bearer", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL("/api/v1/websocket/broadcast?message=x"), nil)
		req.Header.Set("Authorization", "Bearer "+big)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Message string `json:"message"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusUnauthorized || err != nil || !strings.Contains(body.Message, why) {
			t.Errorf("status %d, body %+v (%v); want 401 JSON saying %q", resp.StatusCode, body, err, why)
		}
	})
	t.Run("under the bound", func(t *testing.T) {
		s, err := dial(t, srv, pad(100)).Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		select {
		case f := <-s.Events():
			if f.GetSystem() == nil {
				t.Errorf("first frame %v, want the welcome", f)
			}
		case <-time.After(waitTimeout):
			t.Error("no welcome")
		}
	})
}
