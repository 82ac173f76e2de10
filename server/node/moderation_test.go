package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func withBearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// rest calls the node's REST API with token ("" for none) and returns the
// HTTP status and the decoded JSON answer.
func rest(t *testing.T, srv *nodetest.Server, method, path, body, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, b, err)
	}
	return resp.StatusCode, out
}

func restStatus(t *testing.T, srv *nodetest.Server, method, path, body, token string) int {
	t.Helper()
	code, _ := rest(t, srv, method, path, body, token)
	return code
}

// Bad moderation calls get a clear refusal and change nothing.
func TestModerationRefusesBadInput(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	root := srv.Token(t, "root", true)
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"no duration", "POST", "/api/v1/websocket/bans", `{"user":"bob"}`, 400},
		{"bad duration", "POST", "/api/v1/websocket/bans", `{"user":"bob","duration":"soon"}`, 400},
		{"negative duration", "POST", "/api/v1/websocket/bans", `{"user":"bob","duration":"-1m"}`, 400},
		{"no user", "POST", "/api/v1/websocket/bans", `{"duration":"1m"}`, 400},
		{"bad room", "POST", "/api/v1/websocket/bans", `{"user":"bob","room":"a/b","duration":"1m"}`, 400},
		{"long reason", "POST", "/api/v1/websocket/users/bob/disconnect", `{"reason":"` + strings.Repeat("x", 200) + `"}`, 400},
		{"no user, long reason", "POST", "/api/v1/websocket/bans", `{"duration":"1m","reason":"` + strings.Repeat("x", 200) + `"}`, 400},
		{"kick bad room", "POST", "/api/v1/websocket/rooms/%20lead/kick", `{"user":"bob"}`, 400},
		{"kick no user", "POST", "/api/v1/websocket/rooms/lounge/kick", `{}`, 400},
		{"lift no ban", "DELETE", "/api/v1/websocket/bans/bob", "", 404},
		{"lift no room ban", "DELETE", "/api/v1/websocket/bans/bob?room=lounge", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := rest(t, srv, tc.method, tc.path, tc.body, root)
			msg, _ := body["message"].(string)
			// The message is for a person: no status text of gRPC's in it.
			if code != tc.want || msg == "" || strings.Contains(msg, "rpc error") {
				t.Errorf("HTTP %d %v, want %d with a plain message", code, body, tc.want)
			}
		})
	}
	if bans, err := srv.Node.Hub().Bans(context.Background()); err != nil || len(bans) != 0 {
		t.Errorf("bans = %v, %v; want none", bans, err)
	}
}

// The gRPC admin methods on one node with the embedded broker: a kick, a
// room ban refused at join until lifted, a server ban that ends the session
// and refuses the next one.
func TestModerationOverGRPC(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	ctx := withBearer(context.Background(), srv.Token(t, "root", true))
	adm := chatv1.NewAdminServiceClient(dial(t, srv, "").Conn())
	alice := connect(t, srv, "alice")
	alice.join("lounge")

	if _, err := adm.KickUser(ctx, &chatv1.KickUserRequest{Room: "lounge", User: "alice"}); err != nil {
		t.Fatal(err)
	}
	alice.await("own room_left, kicked", func(f *chatv1.ServerFrame) bool { return f.GetRoomLeft().GetKicked() })

	if _, err := adm.BanUser(ctx, &chatv1.BanUserRequest{User: "alice", Room: "lounge", Duration: "1h", Reason: "flood"}); err != nil {
		t.Fatal(err)
	}
	alice.must(alice.s.Join("lounge"))
	e := alice.await("refusal", func(f *chatv1.ServerFrame) bool { return f.GetError() != nil }).GetError()
	if e.Code != "banned" || !strings.Contains(e.Message, "flood") {
		t.Errorf("join while banned: %v, want code banned with the reason", e)
	}
	list, err := adm.ListBans(ctx, &chatv1.ListBansRequest{})
	if err != nil || list.TotalBans != 1 || list.Bans[0].Room != "lounge" || time.Until(list.Bans[0].ExpiresAt.AsTime()) < 50*time.Minute {
		t.Errorf("ListBans = %v, %v; want alice's lounge ban for an hour", list, err)
	}
	if _, err := adm.LiftBan(ctx, &chatv1.LiftBanRequest{User: "alice", Room: "lounge"}); err != nil {
		t.Fatal(err)
	}
	alice.join("lounge")

	if _, err := adm.BanUser(ctx, &chatv1.BanUserRequest{User: "alice", Duration: "1h"}); err != nil {
		t.Fatal(err)
	}
	if err := alice.ended(); status.Code(err) != codes.PermissionDenied || client.Reason(err) != client.ReasonBanned {
		t.Errorf("banned session ended with %v, want PermissionDenied, banned", err)
	}
	s, err := dial(t, srv, srv.Token(t, "alice", false)).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range s.Events() {
		t.Error("banned alice got a frame, want none")
	}
	if err := s.Err(); status.Code(err) != codes.PermissionDenied || client.Reason(err) != client.ReasonBanned {
		t.Errorf("banned connect: %v, want PermissionDenied, banned", err)
	}
}

// A kick takes every session of the user out of the room, and each tells
// the room: only the copy a session gets about itself is marked yours, so
// that the user's other sessions (and the other members) do not take it
// for theirs. Within the presence limit the room hears both; above it only
// each session is told, marked too.
func TestKickMarksOnlyTheKickedSessionsOwnRoomLeft(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
	}{{"announced", 0}, {"above presence limit", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := nodetest.Start(t, node.Config{Hub: hub.Config{PresenceLimit: tc.limit}})
			ctx := withBearer(context.Background(), srv.Token(t, "root", true))
			adm := chatv1.NewAdminServiceClient(dial(t, srv, "").Conn())
			phone, laptop, bob := connect(t, srv, "alice"), connect(t, srv, "alice"), connect(t, srv, "bob")
			phone.name, laptop.name = "alice's phone", "alice's laptop"
			for _, u := range []*user{phone, laptop, bob} {
				u.join("lounge")
			}
			if _, err := adm.KickUser(ctx, &chatv1.KickUserRequest{Room: "lounge", User: "alice"}); err != nil {
				t.Fatal(err)
			}
			if tc.limit == 0 {
				// Bob hears both sessions leave, neither copy his.
				for range 2 {
					l := bob.await("alice's room_left", func(f *chatv1.ServerFrame) bool { return f.GetRoomLeft().GetUserId() == "alice" }).GetRoomLeft()
					if !l.Kicked || l.Yours {
						t.Errorf("bob got %v, want kicked and not yours", l)
					}
				}
			}
			// Each of alice's sessions got its own room_left marked: by
			// then the other's copies have been queued to it too.
			for _, u := range []*user{phone, laptop} {
				u.await("own room_left", func(f *chatv1.ServerFrame) bool { return f.GetRoomLeft().GetYours() })
			}
			// A private message queued after every room_left closes the
			// count: no second copy marked yours comes before it.
			bob.must(bob.s.Private("alice", "done"))
			for _, u := range []*user{phone, laptop} {
				for f := u.next(); f.GetPrivateMessage() == nil; f = u.next() {
					if l := f.GetRoomLeft(); l != nil && (l.Yours || l.UserId != "alice" || !l.Kicked) {
						t.Errorf("%s got %v after its own room_left, want only the other session's, kicked and not yours", u.name, l)
					}
				}
			}
		})
	}
}
