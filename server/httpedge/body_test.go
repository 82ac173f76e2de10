package httpedge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tertulia/tertulia/server/httpedge"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// edge serves REST, with a body timeout of its own, in front of a real
// node's gRPC server.
func edge(t *testing.T, bodyTimeout time.Duration) (*nodetest.Server, string) {
	t.Helper()
	srv := nodetest.Start(t, node.Config{})
	cc, err := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	h, err := httpedge.Handler(context.Background(), httpedge.Config{Conn: cc, BodyTimeout: bodyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return srv, strings.TrimPrefix(hs.URL, "http://")
}

// rawPost sends a POST's head and the first bytes of its body, and returns
// the answer that comes, if one comes within waitTimeout.
func rawPost(t *testing.T, addr string, contentLength int, start string) (*http.Response, map[string]any) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(nc, "POST /api/v1/websocket/broadcast HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", contentLength, start)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Errorf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp, body
}

// A body that does not come in time is answered 408, before anything is
// authenticated: nobody holds a request, and what it read, by sending its
// body a byte at a time. Before, the wait had no end.
func TestSlowBodyIsCutOff(t *testing.T) {
	_, addr := edge(t, 300*time.Millisecond)
	resp, body := rawPost(t, addr, 1000, `{"message":"`)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d %v, want 408", resp.StatusCode, body)
	}
}

// A body over the bound is answered 413, whether its length is announced
// or not; bodies within it, and fields in the query, still go through.
func TestBodyBounds(t *testing.T) {
	srv, addr := edge(t, 0)
	resp, body := rawPost(t, addr, 100_000, "")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("100 kB announced: status %d %v, want 413", resp.StatusCode, body)
	}
	post := func(query string, body io.Reader) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/websocket/broadcast"+query, body)
		req.Header.Set("Authorization", "Bearer "+srv.Token(t, "root", true))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	chunked := io.MultiReader(strings.NewReader(`{"message":"`), strings.NewReader(strings.Repeat("a", 100_000)+`"}`))
	if got := post("", chunked); got != http.StatusRequestEntityTooLarge {
		t.Errorf("100 kB chunked: status %d, want 413", got)
	}
	if got := post("", strings.NewReader(`{"message":"hi"}`)); got != http.StatusOK {
		t.Errorf("a JSON body: status %d, want 200", got)
	}
	if got := post("?message=hi", nil); got != http.StatusOK {
		t.Errorf("fields in the query: status %d, want 200", got)
	}
}
