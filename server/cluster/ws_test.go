package cluster_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// wsFrame is a JSON frame as a browser would read it.
type wsFrame map[string]any

func (f wsFrame) str(k string) string { s, _ := f[k].(string); return s }

// wsUser is one WebSocket client of the bridge at /api/v1/ws.
type wsUser struct {
	t    testing.TB
	name string
	conn net.Conn
	r    io.Reader // conn, behind what the handshake read ahead
	id   string    // user id, from the welcome
}

// wsConnect opens a WebSocket to path on srv's HTTP port and waits for the
// welcome.
func wsConnect(t testing.TB, srv *nodetest.Server, name, path string) *wsUser {
	t.Helper()
	conn, br, _, err := ws.Dialer{Timeout: waitTimeout}.Dial(context.Background(), "ws://"+srv.HTTPAddr+path)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, path, err)
	}
	t.Cleanup(func() { conn.Close() })
	u := &wsUser{t: t, name: name, conn: conn, r: conn}
	if br != nil { // the welcome came with the handshake's answer
		u.r = io.MultiReader(br, conn)
	}
	u.id = u.await("welcome", func(f wsFrame) bool { return f.str("type") == "system" }).str("user_id")
	return u
}

// wsLogin connects name through the authenticated endpoint.
func wsLogin(t testing.TB, srv *nodetest.Server, name string) *wsUser {
	t.Helper()
	return wsConnect(t, srv, name, "/api/v1/ws/authenticated?token="+srv.Token(t, name, false))
}

func (u *wsUser) send(v any) {
	u.t.Helper()
	b, err := json.Marshal(v)
	if err == nil {
		err = wsutil.WriteClientText(u.conn, b)
	}
	if err != nil {
		u.t.Fatalf("%s: send: %v", u.name, err)
	}
}

// await skips frames until one satisfies match, and returns it.
func (u *wsUser) await(what string, match func(wsFrame) bool) wsFrame {
	u.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	u.conn.SetReadDeadline(deadline)
	for time.Now().Before(deadline) {
		data, err := wsutil.ReadServerText(struct {
			io.Reader
			io.Writer
		}{u.r, u.conn})
		if err != nil {
			u.t.Fatalf("%s: waiting for %s: %v", u.name, what, err)
		}
		var f wsFrame
		if err := json.Unmarshal(data, &f); err != nil {
			u.t.Fatalf("%s: frame %q is not JSON: %v", u.name, data, err)
		}
		if match(f) {
			return f
		}
	}
	u.t.Fatalf("%s: no %s within %v", u.name, what, waitTimeout)
	return nil
}

func wsIs(typ string, fields map[string]string) func(wsFrame) bool {
	return func(f wsFrame) bool {
		if f.str("type") != typ {
			return false
		}
		for k, v := range fields {
			if f.str(k) != v {
				return false
			}
		}
		return true
	}
}

// WebSocket clients on two nodes, and a gRPC client beside them, chat as
// if on one server.
func TestWebSocketClientsCrossNodes(t *testing.T) {
	cl := startCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	alice := wsLogin(t, a, "alice")
	bob := wsLogin(t, b, "bob")
	alice.await("bob's user_joined", wsIs("user_joined", map[string]string{"user_id": "bob"}))
	carol := connect(t, b, "carol", false) // gRPC

	alice.send(map[string]string{"type": "join_room", "room": "lounge"})
	alice.await("own room_joined", wsIs("room_joined", map[string]string{"user_id": "alice"}))
	bob.send(map[string]string{"type": "join_room", "room": "lounge"})
	alice.await("bob's room_joined", wsIs("room_joined", map[string]string{"user_id": "bob", "room": "lounge"}))
	carol.join("lounge")
	bob.await("carol's room_joined", wsIs("room_joined", map[string]string{"user_id": "carol"}))

	alice.send(map[string]string{"type": "message", "room": "lounge", "message": "hola", "id": "m1"})
	bob.await("alice's room message", wsIs("message", map[string]string{"sender": "alice", "room": "lounge", "message": "hola"}))
	if m := carol.await("alice's room message", isMessage("hola")).GetMessage(); m.Room != "lounge" || m.Sender != "alice" {
		t.Errorf("carol (gRPC) got %+v, want hola from alice in lounge", m)
	}

	bob.send(map[string]string{"type": "private_message", "target_user": "alice", "message": "psst"})
	sent := bob.await("private_sent", wsIs("private_sent", map[string]string{"target_user": "alice"}))
	if d, _ := sent["delivered"].(float64); d != 1 {
		t.Errorf("private_sent delivered = %v, want 1 (alice on the other node)", sent["delivered"])
	}
	alice.await("bob's private message", wsIs("private_message", map[string]string{"sender": "bob", "message": "psst"}))

	// A guest with a seed-style frame (no type) talks to the lobby.
	guest := wsConnect(t, b, "guest", "/api/v1/ws")
	guest.send(map[string]string{"message": "hi all"})
	f := alice.await("the guest's lobby message", wsIs("message", map[string]string{"message": "hi all", "user_id": guest.id}))
	if _, ok := f["room"]; ok && f.str("room") != "" {
		t.Errorf("lobby message has room %q, want none", f.str("room"))
	}

	admin := connect(t, a, "root", true)
	if n, err := admin.c.Broadcast(context.Background(), "closing soon", "lounge"); err != nil || n != 3 {
		t.Fatalf("room broadcast: got %d recipients, %v; want 3", n, err)
	}
	bob.await("admin broadcast", wsIs("admin_broadcast", map[string]string{"message": "closing soon", "room": "lounge"}))
	carol.await("admin broadcast", func(f *chatv1.ServerFrame) bool { return f.GetAdminBroadcast().GetMessage() == "closing soon" })
}
