package node_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

func wsMessage(text string) func(map[string]any) bool {
	return func(f map[string]any) bool { return f["type"] == "message" && f["message"] == text }
}

// chatOverBoth has a gRPC client and a WebSocket client of srv join room
// and exchange one message each way. It returns them, still connected.
func chatOverBoth(t *testing.T, srv *nodetest.Server, room, fromWS, fromGRPC string) (*user, *nodetest.WSClient) {
	t.Helper()
	alice := connect(t, srv, "alice")
	alice.join(room)
	bob := srv.DialWS(t, "/api/v1/ws/authenticated?token="+srv.Token(t, "bob", false))
	bob.Send(map[string]string{"type": "join_room", "room": room})
	bob.Await("room_joined", func(f map[string]any) bool { return f["type"] == "room_joined" && f["user_id"] == "bob" })
	bob.Send(map[string]string{"type": "message", "room": room, "message": fromWS})
	alice.await("bob's message", isMessage(fromWS))
	alice.must(alice.s.Send(room, fromGRPC))
	bob.Await("alice's message", wsMessage(fromGRPC))
	return alice, bob
}

func TestMetricsAfterTraffic(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	_, bob := chatOverBoth(t, srv, "ops", "hello from ws", "hello from grpc")

	m := nodetest.Scrape(t, srv.URL("/metrics"))
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"tertulia_connections", []string{"transport", "grpc"}, 1},
		{"tertulia_connections", []string{"transport", "websocket"}, 1},
		{"tertulia_sessions", nil, 2},
		{"tertulia_rooms", nil, 1},
		{"tertulia_messages_in_total", []string{"kind", "message"}, 2},
		{"tertulia_messages_in_total", []string{"kind", "join_room"}, 2},
		{"tertulia_deliveries_total", nil, 4},
		{"tertulia_published_total", nil, 4},
		{"tertulia_broker_publish_duration_seconds", nil, 4}, // sample count
		{"grpc_server_started_total", []string{"grpc_method", "Connect"}, 1},
		{"grpc_server_handled_total", []string{"grpc_method", "ListRooms"}, 0}, // shown at 0 before any call
		{"go_goroutines", nil, 1},
		{"process_resident_memory_bytes", nil, 1},
	} {
		got, ok := m.Value(c.name, c.labels...)
		if !ok || got < c.min {
			t.Errorf("%s%v = %v (present %v), want at least %v", c.name, c.labels, got, ok, c.min)
		}
	}
	for _, name := range []string{"tertulia_broker_publish_errors_total", "tertulia_rate_limited_frames_total",
		"tertulia_slow_disconnects_total", "tertulia_flood_disconnects_total", "tertulia_id_too_long_total", "tertulia_handshakes_refused_total"} {
		if got, ok := m.Value(name); !ok || got != 0 {
			t.Errorf("%s = %v (present %v), want 0", name, got, ok)
		}
	}

	// The WebSocket client goes away: the node counts a disconnect by the
	// client, and the connection no longer.
	bob.Conn.Close()
	deadline := time.Now().Add(waitTimeout)
	for {
		m = nodetest.Scrape(t, srv.URL("/metrics"))
		gone, _ := m.Value("tertulia_disconnects_total", "reason", "client")
		open, _ := m.Value("tertulia_connections", "transport", "websocket")
		if gone == 1 && open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the WebSocket closed: disconnects{client} = %v, connections{websocket} = %v; want 1 and 0", gone, open)
		}
		time.Sleep(10 * time.Millisecond) // polling a scrape: nothing to wait on
	}
}

func TestAdminListener(t *testing.T) {
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := nodetest.Start(t, node.Config{AdminListener: admin})
	connect(t, srv, "alice")

	m := nodetest.Scrape(t, "http://"+admin.Addr().String()+"/metrics")
	if got, _ := m.Value("tertulia_connections", "transport", "grpc"); got != 1 {
		t.Errorf("admin /metrics: tertulia_connections{grpc} = %v, want 1", got)
	}
	for _, c := range []struct {
		url, contains string
		status        int
	}{
		{"http://" + admin.Addr().String() + "/debug/pprof/", "goroutine", 200},
		{"http://" + admin.Addr().String() + "/debug/pprof/goroutine?debug=1", "goroutine profile", 200},
		{srv.URL("/metrics"), "", 404},
		{srv.URL("/debug/pprof/"), "", 404},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.contains) {
			t.Errorf("GET %s = %d, want %d containing %q", c.url, resp.StatusCode, c.status, c.contains)
		}
	}
}
