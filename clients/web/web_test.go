package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	web "github.com/tertulia/tertulia/clients/web"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// The pages are served at /static/, under their names and the seed's, and
// / leads to them.
func TestPagesAreServed(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Dev: true, Static: web.FS()})
	for _, tc := range []struct {
		path, contentType, want string
	}{
		{"/", "text/html", "Tertulia — WebSocket Chat"},
		{"/static/index.html", "text/html", `href="rooms.html"`},
		{"/static/websocket_test.html", "text/html", "Tertulia — WebSocket Chat"},
		{"/static/rooms.html", "text/html", "Tertulia — Chat with rooms"},
		{"/static/websocket_rooms.html", "text/html", "Tertulia — Chat with rooms"},
		{"/static/chat.js", "text/javascript", "export class Connection"},
		{"/static/recovery.js", "text/javascript", "export class Recovery"},
		{"/static/roomjoins.js", "text/javascript", "export class RoomJoins"},
		{"/static/chat.css", "text/css", "#messages"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res, err := http.Get(srv.URL(tc.path))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", tc.path, res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.contentType)
			}
			if !strings.Contains(string(body), tc.want) {
				t.Errorf("GET %s: body lacks %q", tc.path, tc.want)
			}
		})
	}
}

// No page may put text into the DOM as HTML.
func TestPagesNeverUseInnerHTML(t *testing.T) {
	for _, name := range []string{"index.html", "rooms.html", "chat.js"} {
		f, err := web.FS().Open(name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s; want textContent only", name, bad)
			}
		}
	}
}
