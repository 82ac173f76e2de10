package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func isBroadcast(text string) func(*chatv1.ServerFrame) bool {
	return func(f *chatv1.ServerFrame) bool {
		return f.GetAdminBroadcast() != nil && f.GetAdminBroadcast().Message == text
	}
}

func TestAdminBroadcast(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	alice, bob, carol := connect(t, srv, "alice"), connect(t, srv, "bob"), connect(t, srv, "carol")
	alice.join("ops")
	bob.join("ops")
	admin := dial(t, srv, srv.Token(t, "root", true))
	ctx := context.Background()

	n, err := admin.Broadcast(ctx, "maintenance at noon", "")
	if err != nil || n != 3 {
		t.Fatalf("broadcast to all = %d, %v; want 3 recipients", n, err)
	}
	for _, u := range []*user{alice, bob, carol} {
		u.await("broadcast to all", isBroadcast("maintenance at noon"))
	}

	n, err = admin.Broadcast(ctx, "ops only", "ops")
	if err != nil || n != 2 {
		t.Fatalf("broadcast to ops = %d, %v; want 2 recipients", n, err)
	}
	for _, u := range []*user{alice, bob} {
		if got := u.await("broadcast to ops", isBroadcast("ops only")).GetAdminBroadcast().Room; got != "ops" {
			t.Errorf("%s: broadcast room = %q, want ops", u.name, got)
		}
	}
	admin.Broadcast(ctx, "after", "")
	carol.await("the next broadcast", func(f *chatv1.ServerFrame) bool {
		if isBroadcast("ops only")(f) {
			t.Errorf("carol got the ops broadcast")
		}
		return isBroadcast("after")(f)
	})

	t.Run("non-admin is refused", func(t *testing.T) {
		_, err := alice.c.Broadcast(ctx, "I am not admin", "")
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("non-admin broadcast: got %v, want PermissionDenied", err)
		}
		_, err = dial(t, srv, "").Broadcast(ctx, "anonymous", "")
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("broadcast without token: got %v, want Unauthenticated", err)
		}
	})

	t.Run("REST", func(t *testing.T) {
		for _, tc := range []struct {
			name, token, query string
			want               int
		}{
			{"admin, query as in the seed", srv.Token(t, "root", true), "?message=hello%20rest&room=ops", http.StatusOK},
			{"non-admin", srv.Token(t, "alice", false), "?message=x", http.StatusForbidden},
			{"no token", "", "?message=x", http.StatusUnauthorized},
			{"bad room", srv.Token(t, "root", true), "?message=x&room=tab%09room", http.StatusBadRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, srv.URL("/api/v1/websocket/broadcast"+tc.query), nil)
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
					t.Fatalf("body is not JSON: %v", err)
				}
				if resp.StatusCode != tc.want {
					t.Fatalf("status = %d (%v), want %d", resp.StatusCode, body, tc.want)
				}
				if tc.want == http.StatusOK && body["recipients"] != float64(2) {
					t.Errorf("recipients = %v, want 2", body["recipients"])
				}
				if tc.want != http.StatusOK && body["message"] == nil {
					t.Errorf("error body %v has no message", body)
				}
			})
		}
		alice.await("REST broadcast", isBroadcast("hello rest"))

		// A JSON body works as well as the seed's query parameters.
		req, _ := http.NewRequest(http.MethodPost, srv.URL("/api/v1/websocket/broadcast"), strings.NewReader(`{"message":"json body"}`))
		req.Header.Set("Authorization", "Bearer "+srv.Token(t, "root", true))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("JSON body broadcast: status %d, want 200", resp.StatusCode)
		}
		carol.await("JSON body broadcast", isBroadcast("json body"))
	})
}
