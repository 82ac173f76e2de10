package httpedge_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func TestMain(m *testing.M) { nodetest.VerifyTestMain(m) }

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestEdgeEndpoints(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	for _, tc := range []struct {
		path, contains string
		status         int
	}{
		{"/health", `"status":"healthy"`, 200},
		{"/metrics", "tertulia_slow_disconnects_total 0", 200},
		{"/openapi.json", `"/api/v1/websocket/stats"`, 200},
		{"/api/v1/websocket/nope", `"message"`, 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, srv.URL(tc.path))
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.contains) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, resp.StatusCode, body, tc.status, tc.contains)
			}
		})
	}
}

func TestTestTokenOnlyInDevMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		dev  bool
		want int
	}{{"dev", true, 200}, {"production", false, 404}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := nodetest.Start(t, node.Config{Dev: tc.dev})
			resp, err := http.Post(srv.URL("/api/v1/websocket/test-token?username=alice"), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.want {
				t.Fatalf("test-token: status %d %v, want %d", resp.StatusCode, body, tc.want)
			}
			if tc.dev {
				tok, _ := body["access_token"].(string)
				if _, err := srv.Auth.Verify(tok); err != nil || body["token_type"] != "bearer" ||
					!strings.HasPrefix(body["websocket_url"].(string), "ws://"+srv.HTTPAddr+"/api/v1/ws/authenticated?token=") {
					t.Errorf("test-token answer %v: token valid: %v; want a bearer token and a websocket_url on this host", body, err)
				}
			}
		})
	}
	t.Run("bad username", func(t *testing.T) {
		srv := nodetest.Start(t, node.Config{Dev: true})
		for _, name := range []string{``, `eve\u202egnp.exe`, `a\u0000b`, `guest-1a2b3c4d`} {
			resp, err := http.Post(srv.URL("/api/v1/websocket/test-token"), "application/json", strings.NewReader(`{"username":"`+name+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || body["message"] == nil {
				t.Errorf("username %q: status %d %v, want 400 with a JSON message", name, resp.StatusCode, body)
			}
		}
	})
}

// A POST body declared as anything but JSON is refused with 415 and a JSON
// answer; JSON, or no Content-Type at all, goes through.
func TestNonJSONBodyIsRefused(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Dev: true})
	for _, tc := range []struct {
		contentType string
		want        int
	}{
		{"text/plain", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"application/json; charset=utf-8", http.StatusOK},
		{"", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL("/api/v1/websocket/test-token"), strings.NewReader(`{"username":"alice"}`))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || err != nil {
			t.Errorf("Content-Type %q: status %d (%v, body %v), want %d with a JSON body", tc.contentType, resp.StatusCode, err, body, tc.want)
		}
		if tc.want == http.StatusUnsupportedMediaType && !strings.Contains(body["message"].(string), "application/json") {
			t.Errorf("Content-Type %q: message %q, want it to name application/json", tc.contentType, body["message"])
		}
	}
}

// A path or query that is not UTF-8 once unescaped is the client's
// mistake: 400 with a JSON answer, as any bad input, where the gateway
// answered 500 (protobuf carries no such string).
func TestNonUTF8PathOrQueryIsRefused(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Dev: true})
	for _, tc := range []struct {
		method, path string
	}{
		{http.MethodGet, "/api/v1/websocket/rooms/caf%e9/members"}, // Latin-1, not UTF-8
		{http.MethodGet, "/api/v1/websocket/rooms/x/members?cursor=%ff"},
		{http.MethodDelete, "/api/v1/websocket/bans/%ff"},
	} {
		status, body, err := errorAnswer(t, tc.method, srv.URL(tc.path))
		if status != http.StatusBadRequest || err != nil || body.Code != 3 || !strings.Contains(body.Message, "UTF-8") {
			t.Errorf("%s %s: status %d, body %+v (%v); want 400 JSON, code 3, naming UTF-8", tc.method, tc.path, status, body, err)
		}
	}
	resp, body := get(t, srv.URL("/api/v1/websocket/rooms/caf%C3%A9/members"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"room":"café"`) {
		t.Errorf("GET members of café = %d %s, want 200 for the UTF-8 name", resp.StatusCode, body)
	}
}

// A method a REST path does not take is the client's mistake: 405 with a
// JSON answer naming it, not the gateway's 501, which counts as the
// server's failure.
func TestWrongMethodGets405(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Dev: true})
	for _, tc := range []struct{ method, path string }{
		{http.MethodPut, "/api/v1/websocket/stats"},
		{http.MethodGet, "/api/v1/websocket/test-token"},
		{http.MethodDelete, "/api/v1/websocket/broadcast"},
	} {
		status, body, err := errorAnswer(t, tc.method, srv.URL(tc.path))
		if status != http.StatusMethodNotAllowed || err != nil || !strings.Contains(body.Message, tc.method) {
			t.Errorf("%s %s: status %d, body %+v (%v); want 405 JSON naming the method", tc.method, tc.path, status, body, err)
		}
	}
}

// errorBody is a REST error answer.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// errorAnswer sends a bodiless request and returns the status and the
// error answer decoded, with the decoding's error.
func errorAnswer(t *testing.T, method, url string) (int, errorBody, error) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body errorBody
	err = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, err
}
