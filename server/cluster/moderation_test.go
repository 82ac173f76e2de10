package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// admin calls a moderation route of srv's REST API as an administrator and
// returns the decoded answer, failing the test unless it is 200.
func admin(t *testing.T, srv *nodetest.Server, method, path, body string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token(t, "root", true))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d %s, want 200", method, path, resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %q is not JSON", method, path, b)
	}
	return out
}

// closed reads until the server closes the WebSocket, and returns the close
// code and reason.
func (u *wsUser) closed() (ws.StatusCode, string) {
	u.t.Helper()
	u.conn.SetReadDeadline(time.Now().Add(waitTimeout))
	rw := struct {
		io.Reader
		io.Writer
	}{u.r, u.conn}
	for {
		_, err := wsutil.ReadServerText(rw)
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		if err != nil {
			u.t.Fatalf("%s: %v, want a close frame", u.name, err)
		}
	}
}

// wsRefused dials name's WebSocket to srv and returns the close code and
// reason it is refused with, before any welcome.
func wsRefused(t *testing.T, srv *nodetest.Server, name string) (ws.StatusCode, string) {
	t.Helper()
	conn, br, _, err := ws.Dialer{Timeout: waitTimeout}.Dial(context.Background(),
		"ws://"+srv.HTTPAddr+"/api/v1/ws/authenticated?token="+srv.Token(t, name, false))
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	defer conn.Close()
	u := &wsUser{t: t, name: name, conn: conn, r: conn}
	if br != nil {
		u.r = io.MultiReader(br, conn)
	}
	return u.closed()
}

// ended waits for a gRPC session to end and returns its status.
func (u *user) ended() error {
	u.t.Helper()
	return nodetest.Ended(u.t, u.name, u.s, waitTimeout)
}

// grpcRefused opens a gRPC session for name on srv and returns the status it
// is refused with (nil if it was welcomed).
func grpcRefused(t *testing.T, srv *nodetest.Server, name string) error {
	t.Helper()
	c, err := client.Dial(srv.GRPCAddr, client.WithToken(srv.Token(t, name, false)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Connect(context.Background())
	if err != nil {
		return err
	}
	defer s.Close()
	select {
	case f, ok := <-s.Events():
		if ok && f.GetSystem() != nil {
			return nil
		}
		return s.Err()
	case <-time.After(waitTimeout):
		t.Fatalf("%s: neither welcomed nor refused within %v", name, waitTimeout)
		return nil
	}
}

func wantModerated(t *testing.T, who string, err error, reason, text string) {
	t.Helper()
	if status.Code(err) != codes.PermissionDenied || client.Reason(err) != reason || !strings.Contains(status.Convert(err).Message(), text) {
		t.Errorf("%s: ended with %v (reason %q), want PermissionDenied, %s, %q", who, err, client.Reason(err), reason, text)
	}
}

func wantClosed(t *testing.T, who string, code ws.StatusCode, reason string, text string) {
	t.Helper()
	if code != 4003 || !strings.Contains(reason, text) {
		t.Errorf("%s: closed %d %q, want 4003 with %q", who, code, reason, text)
	}
}

// An administrator on one node disconnects a user's connections on both
// nodes, gRPC and WebSocket, with a reason; the others are told the user
// left, and the user may come back.
func TestDisconnectEverywhere(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	alice := connect(t, a, "alice", false)
	bobGRPC := connect(t, a, "bob", false)
	bobWS := wsLogin(t, b, "bob")
	alice.await("bob's user_joined", func(f *chatv1.ServerFrame) bool { return f.GetUserJoined().GetUserId() == "bob" })

	got := admin(t, b, "POST", "/api/v1/websocket/users/bob/disconnect", `{"reason":"cool off"}`)
	if got["connections"] != 2.0 {
		t.Errorf("disconnect answer %v, want connections 2", got)
	}
	wantModerated(t, "bob over gRPC", bobGRPC.ended(), client.ReasonDisconnected, "cool off")
	code, reason := bobWS.closed()
	wantClosed(t, "bob over WebSocket", code, reason, "cool off")
	alice.await("bob's user_left", func(f *chatv1.ServerFrame) bool { return f.GetUserLeft().GetUserId() == "bob" })
	alice.must(alice.s.Send("", "alice still here"))
	alice.await("own message", isMessage("alice still here"))

	connect(t, b, "bob", false) // not banned: welcome again
}

// A kick takes a user's sessions on both nodes out of a room, with kicked
// set; the room's members are told; the user stays connected and may join
// again.
func TestKickFromRoomAcrossNodes(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	carol := connect(t, b, "carol", false)
	carol.join("lounge")
	bobGRPC := connect(t, a, "bob", false)
	bobGRPC.join("lounge")
	bobWS := wsLogin(t, b, "bob")
	bobWS.send(map[string]string{"type": "join_room", "room": "lounge"})
	bobWS.await("own room_joined", wsIs("room_joined", map[string]string{"user_id": "bob", "room": "lounge"}))

	admin(t, a, "POST", "/api/v1/websocket/rooms/lounge/kick", `{"user":"bob"}`)
	isKicked := func(f *chatv1.ServerFrame) bool {
		l := f.GetRoomLeft()
		return l != nil && l.UserId == "bob" && l.Room == "lounge" && l.Kicked
	}
	bobGRPC.await("own room_left, kicked", isKicked)
	bobWS.await("own room_left, kicked", func(f wsFrame) bool {
		return f.str("type") == "room_left" && f.str("user_id") == "bob" && f["kicked"] == true
	})
	carol.await("bob's first room_left", isKicked)
	carol.await("bob's second room_left", isKicked)

	carol.must(carol.s.Send("lounge", "bob is out"))
	carol.await("own room message", isMessage("bob is out"))
	bobGRPC.must(bobGRPC.s.Send("", "bob still connected"))
	bobGRPC.await("own lobby message", isMessage("bob still connected"))
	if f, ok := bobGRPC.poll(200*time.Millisecond, isMessage("bob is out")); ok {
		t.Errorf("kicked bob got %v from the room", f)
	}
	bobGRPC.join("lounge") // a kick is no ban
}

// A server ban on one node ends the user's sessions on both and refuses
// them at connect on both; a room ban kicks them and refuses them at join
// on both until lifted; a short ban lifts on its own, on every node.
func TestBansAcrossNodes(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	bobGRPC := connect(t, b, "bob", false)
	bobWS := wsLogin(t, a, "bob")

	ban := admin(t, a, "POST", "/api/v1/websocket/bans", `{"user":"bob","duration":"1h","reason":"spam"}`)["ban"].(map[string]any)
	if ban["user"] != "bob" || ban["room"] != "" || ban["reason"] != "spam" {
		t.Errorf("ban answer %v, want bob's server ban", ban)
	}
	wantModerated(t, "bob over gRPC", bobGRPC.ended(), client.ReasonBanned, "spam")
	code, reason := bobWS.closed()
	wantClosed(t, "bob over WebSocket", code, reason, "spam")
	for i, srv := range cl.nodes {
		wantModerated(t, "bob reconnecting over gRPC", grpcRefused(t, srv, "bob"), client.ReasonBanned, "banned")
		code, reason := wsRefused(t, srv, "bob")
		wantClosed(t, "bob reconnecting over WebSocket to node "+string(rune('a'+i)), code, reason, "banned")
	}

	// A room ban: carol is taken out of the room, and refused there on
	// both nodes, but nowhere else.
	carolA := connect(t, a, "carol", false)
	carolA.join("den")
	carolB := wsLogin(t, b, "carol")
	admin(t, b, "POST", "/api/v1/websocket/bans", `{"user":"carol","room":"den","duration":"1h"}`)
	carolA.await("own room_left, kicked", func(f *chatv1.ServerFrame) bool { return f.GetRoomLeft().GetKicked() })
	carolA.must(carolA.s.Join("den"))
	if e := carolA.await("refusal", func(f *chatv1.ServerFrame) bool { return f.GetError() != nil }).GetError(); e.Code != "banned" {
		t.Errorf("carol joining den on node a: error %q, want banned", e.Code)
	}
	carolB.send(map[string]string{"type": "join_room", "room": "den"})
	carolB.await("refusal on node b", wsIs("error", map[string]string{"code": "banned"}))
	carolA.join("porch")

	list := admin(t, b, "GET", "/api/v1/websocket/bans", "")
	if list["total_bans"] != 2.0 {
		t.Errorf("bans listed: %v, want bob's and carol's", list)
	}
	admin(t, a, "DELETE", "/api/v1/websocket/bans/carol?room=den", "")
	carolA.join("den")
	carolB.send(map[string]string{"type": "join_room", "room": "den"})
	carolB.await("room_joined on node b", wsIs("room_joined", map[string]string{"user_id": "carol", "room": "den"}))

	// A short ban lifts on time on every node.
	start := time.Now()
	admin(t, b, "POST", "/api/v1/websocket/bans", `{"user":"dave","duration":"2s"}`)
	if err := grpcRefused(t, a, "dave"); time.Since(start) < 1500*time.Millisecond && client.Reason(err) != client.ReasonBanned {
		t.Errorf("dave connecting within his ban: %v, want refused as banned", err)
	}
	for _, srv := range cl.nodes {
		eventually(t, 10*time.Second, "dave welcome after his ban", func() bool { return grpcRefused(t, srv, "dave") == nil })
	}
	if time.Since(start) < 2*time.Second {
		t.Errorf("dave welcome %v after a 2s ban", time.Since(start))
	}
}
