package bridge_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/node"
)

// An upgrade is admitted by the same rule whichever way it reaches the
// bridge: off the listener (a fresh connection) or through the HTTP server
// (an upgrade on a kept-alive connection).
func TestAdmissionIsTheSameOnBothPaths(t *testing.T) {
	tg := start(t, inProcess, node.Config{}, bridge.Config{})
	token := tg.node.Token(t, "alice", false)
	paths := map[string]func(t *testing.T) *rawConn{
		"listener": func(t *testing.T) *rawConn { return dialTCP(t, tg) },
		"handler": func(t *testing.T) *rawConn {
			c := dialTCP(t, tg)
			c.write("GET /health HTTP/1.1\r\nHost: " + tg.host + "\r\n\r\n")
			res := c.response()
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return c
		},
	}
	withHeader := func(path, header string) string {
		return strings.Replace(upgradeRequest(tg.host, path), "\r\n\r\n", "\r\n"+header+"\r\n\r\n", 1)
	}
	for _, tc := range []struct {
		name     string
		request  string
		status   int
		protocol string // echoed
	}{
		{"token in the query", upgradeRequest(tg.host, "/api/v1/ws/authenticated?token="+token), http.StatusSwitchingProtocols, ""},
		{"token as a subprotocol", withHeader("/api/v1/ws/authenticated", "Sec-WebSocket-Protocol: tertulia.v1, bearer."+token), http.StatusSwitchingProtocols, "tertulia.v1"},
		{"subprotocols without ours", withHeader("/api/v1/ws/authenticated", "Sec-WebSocket-Protocol: bearer."+token), http.StatusBadRequest, ""},
		{"foreign origin", withHeader("/api/v1/ws/authenticated?token="+token, "Origin: https://evil.example"), http.StatusForbidden, ""},
	} {
		for name, dial := range paths {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				c := dial(t)
				c.write(tc.request)
				res := c.response()
				if res.StatusCode != tc.status {
					t.Fatalf("status %s, want %d", res.Status, tc.status)
				}
				if got := res.Header.Get("Sec-WebSocket-Protocol"); got != tc.protocol {
					t.Errorf("subprotocol %q, want %q", got, tc.protocol)
				}
				if tc.status == http.StatusSwitchingProtocols {
					c.welcome()
				}
			})
		}
	}
}
