package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// `tertulia bridge --upstream` in front of a node: a browser's token goes to
// the core as metadata, chat flows both ways, and the bridge stops cleanly.
func TestBridgeCommand(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"bridge", "--upstream", srv.GRPCAddr, "--http-addr", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("bridge printed nothing: %v", err)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`ws://(\S+)/api/v1/ws`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("bridge printed %q, want its ws:// address", line)
	}
	conn, br, _, err := ws.Dialer{Timeout: 5 * time.Second}.Dial(ctx, "ws://"+m[1]+"/api/v1/ws/authenticated?token="+srv.Token(t, "alice", false))
	if err != nil {
		t.Fatalf("dial bridge: %v", err)
	}
	defer conn.Close()
	var r io.Reader = conn
	if br != nil {
		r = br
	}
	rw := struct {
		io.Reader
		io.Writer
	}{r, conn}
	read := func() map[string]any {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _, err := wsutil.ReadServerData(rw)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var f map[string]any
		json.Unmarshal(b, &f)
		return f
	}
	if f := read(); f["type"] != "system" || f["user_id"] != "alice" {
		t.Fatalf("first frame %v, want alice's welcome from the core", f)
	}
	wsutil.WriteClientText(conn, []byte(`{"message":"through the edge"}`))
	for i := 0; ; i++ {
		if f := read(); f["type"] == "message" && f["message"] == "through the edge" && f["sender"] == "alice" {
			break
		}
		if i == 10 {
			t.Fatal("no echo of the message within 10 frames")
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tertulia bridge: %v, want a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tertulia bridge did not stop within 10s")
	}
	for i := 0; ; i++ {
		_, _, err := nodetest.ReadServerData(rw)
		var ce wsutil.ClosedError
		if err != nil {
			if !errors.As(err, &ce) || ce.Code != bridge.StatusServiceRestart {
				t.Errorf("after the bridge stopped: %v, want close 1012", err)
			}
			break
		}
		if i == 10 {
			t.Fatal("no close frame within 10 frames")
		}
	}
}

func TestBridgeCommandNeedsUpstream(t *testing.T) {
	err := run(context.Background(), []string{"bridge", "--http-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err == nil || !regexp.MustCompile(`--upstream`).MatchString(err.Error()) {
		t.Errorf("bridge without --upstream: %v, want an error naming --upstream", err)
	}
}
