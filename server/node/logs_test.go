package node_test

import (
	"github.com/tertulia/tertulia/server/logs/logstest"

	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/logs"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// records parses JSON log lines.
func records(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestLogsHoldNoTokenNorMessageBody(t *testing.T) {
	var out logstest.Buffer
	log, err := logs.New(&out, "json", "info") // the default level
	if err != nil {
		t.Fatal(err)
	}
	srv := nodetest.Start(t, node.Config{Logger: log})
	var secrets []string
	token := func(user string, admin bool) string {
		tok := srv.Token(t, user, admin)
		secrets = append(secrets, tok, strings.Split(tok, ".")[2]) // the token, and its signature alone
		return tok
	}
	body := func(s string) string { secrets = append(secrets, s); return s }

	// A token in the query string and one in a bearer subprotocol.
	alice := srv.DialWS(t, "/api/v1/ws/authenticated?token="+token("alice", false))
	dave := srv.DialWS(t, "/api/v1/ws", "tertulia.v1", "bearer."+token("dave", false))
	// A bearer token on gRPC.
	carol := dial(t, srv, token("carol", false))
	cs, err := carol.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	carolU := &user{t: t, name: "carol", c: carol, s: cs}
	carolU.welcome = carolU.next().GetSystem()
	// A refused token, which looks like a real one.
	forged := token("mallory", false) + "x"
	secrets = append(secrets, forged)
	if resp, err := http.Get(srv.URL("/api/v1/ws/authenticated?token=" + forged)); err == nil {
		resp.Body.Close()
	}
	if s, err := dial(t, srv, forged).Connect(context.Background()); err == nil {
		<-s.Events() // refused: the stream ends
	}

	// Messages: in a room, private, and an admin's broadcast over REST.
	carolU.join("lounge")
	alice.Send(map[string]string{"type": "join_room", "room": "lounge"})
	alice.Await("room_joined", func(f map[string]any) bool { return f["type"] == "room_joined" && f["user_id"] == "alice" })
	roomMsg := body("the soup recipe is under the sink")
	alice.Send(map[string]string{"type": "message", "room": "lounge", "message": roomMsg})
	carolU.await("alice's message", isMessage(roomMsg))
	privMsg := body("my locker code is 4521")
	carolU.must(cs.Private("dave", privMsg))
	dave.Await("carol's private message", func(f map[string]any) bool { return f["type"] == "private_message" && f["message"] == privMsg })
	cast := body("maintenance at midnight, keep it quiet")
	req, _ := http.NewRequest(http.MethodPost, srv.URL("/api/v1/websocket/broadcast"), strings.NewReader(`{"message":"`+cast+`"}`))
	req.Header.Set("Authorization", "Bearer "+token("root", true))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("broadcast: status %d, want 200", resp.StatusCode)
	}
	isCast := func(f map[string]any) bool { return f["type"] == "admin_broadcast" }
	dave.Await("the broadcast", isCast)
	// Alice reads it too before she goes: a frame the server was still
	// writing to her when her socket went would end her session as a
	// write error, not her leaving.
	alice.Await("the broadcast", isCast)
	alice.Conn.Close()
	aliceConn := alice.Welcome["connection_id"].(string)
	closed := `"msg":"session closed","conn":"` + aliceConn + `","user":"alice","reason":"client"`
	for deadline := time.Now().Add(waitTimeout); !strings.Contains(out.String(), closed); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no record %s in the logs:\n%s", closed, out.String())
		}
	}

	got := out.String()
	for _, s := range secrets {
		if strings.Contains(got, s) {
			t.Errorf("the logs hold %q:\n%s", s, got)
		}
	}
	// The sessions are in the logs by connection id, with their transport
	// and a request id.
	opened := make(map[string]map[string]any)
	for _, r := range records(t, got) {
		if r["msg"] == "session opened" {
			opened[r["conn"].(string)] = r
		}
	}
	for _, c := range []struct {
		conn, transport string
	}{
		{alice.Welcome["connection_id"].(string), "websocket"},
		{dave.Welcome["connection_id"].(string), "websocket"},
		{carolU.welcome.GetConnectionId(), "grpc"},
	} {
		r := opened[c.conn]
		if r == nil {
			t.Errorf("no \"session opened\" record for connection %s:\n%s", c.conn, got)
			continue
		}
		if r["transport"] != c.transport || r["request_id"] == nil || r["request_id"] == "" {
			t.Errorf("session opened record %v: want transport %s and a request_id", r, c.transport)
		}
	}
}
