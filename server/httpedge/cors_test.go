package httpedge_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// A page of an allowed origin may call REST: its preflight is granted and
// its calls carry the grant. Another origin's preflight is refused.
func TestRESTAnswersCORSForAllowedOrigins(t *testing.T) {
	const page = "https://rooms.example.com"
	srv := nodetest.Start(t, node.Config{AllowedOrigins: []string{page}})
	preflight := func(origin, method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, srv.URL(path), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/api/v1/websocket/broadcast"},
		{http.MethodGet, "/api/v1/websocket/rooms"},
	} {
		resp := preflight(page, tc.method, tc.path)
		if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != page {
			t.Errorf("preflight %s %s from %s = %d, Allow-Origin %q; want 2xx granting it",
				tc.method, tc.path, page, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if got := resp.Header.Get("Access-Control-Allow-Headers"); got == "" {
			t.Errorf("preflight %s: no Access-Control-Allow-Headers", tc.path)
		}
	}

	resp := preflight("https://evil.example.net", http.MethodPost, "/api/v1/websocket/broadcast")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin = %d, Allow-Origin %q; want 403 and no grant",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL("/api/v1/websocket/rooms"), nil)
	req.Header.Set("Origin", page)
	req.Header.Set("Authorization", "Bearer "+srv.Token(t, "alice", false)) // reads need one outside dev mode
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != page {
		t.Errorf("GET from %s = %d, Allow-Origin %q; want 200 granting it", page, r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
}
