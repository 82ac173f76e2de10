package bridge_test

// gRPC-Web on the node's HTTP port (github.com/improbable-eng/grpc-web,
// mounted by node.handlers beside the bridge), spoken by hand here: the
// 5-byte framing over net/http, and its WebSocket transport for Connect.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/grpcapi"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// grpcWebFrame frames msg as gRPC-Web (and gRPC) does: a flag byte, a
// big-endian length, the bytes.
func grpcWebFrame(flag byte, msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	b[0] = flag
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// grpcWebReply is a parsed gRPC-Web response body.
type grpcWebReply struct {
	messages [][]byte
	trailers http.Header
}

// readGRPCWebFrame reads one frame; trailer frames have the 0x80 bit set.
func readGRPCWebFrame(r io.Reader) (flag byte, msg []byte, err error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	msg = make([]byte, binary.BigEndian.Uint32(h[1:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return 0, nil, fmt.Errorf("frame body: %w", err)
	}
	return h[0], msg, nil
}

func parseTrailers(b []byte) http.Header {
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(b, "\r\n"...))))
	h, _ := tr.ReadMIMEHeader()
	return http.Header(h)
}

// grpcWebCall makes a unary (or server-streaming, read to the end) gRPC-Web
// call over plain HTTP/1.1.
func grpcWebCall(t *testing.T, base, method string, req proto.Message, header http.Header) (*http.Response, grpcWebReply) {
	t.Helper()
	in, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.NewRequest(http.MethodPost, base+method, bytes.NewReader(grpcWebFrame(0, in)))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/grpc-web+proto")
	hr.Header.Set("X-Grpc-Web", "1")
	for k, v := range header {
		hr.Header[k] = v
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("POST %s: %v", method, err)
	}
	defer res.Body.Close()
	var rep grpcWebReply
	for {
		flag, msg, err := readGRPCWebFrame(res.Body)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: read frame: %v", method, err)
		}
		if flag&0x80 != 0 {
			rep.trailers = parseTrailers(msg)
			continue
		}
		rep.messages = append(rep.messages, msg)
	}
	return res, rep
}

// grpcStatus is the call's grpc-status, from the trailer frame or, for a
// trailers-only answer, the headers.
func grpcStatus(res *http.Response, rep grpcWebReply) string {
	if s := rep.trailers.Get("Grpc-Status"); s != "" {
		return s
	}
	return res.Header.Get("Grpc-Status")
}

func TestGRPCWebUnary(t *testing.T) {
	srv := nodetest.Start(t, node.Config{AllowAnonymous: true})
	tg := &target{node: srv, wsBase: "ws://" + srv.HTTPAddr, host: srv.HTTPAddr}
	guest(t, tg) // one session, for the stats to count

	// Outside dev mode reads need a token.
	res, rep := grpcWebCall(t, srv.URL(""), "/chat.v1.ChatService/GetStats", &chatv1.GetStatsRequest{},
		http.Header{"Authorization": {"Bearer " + srv.Token(t, "alice", false)}})
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc-web") {
		t.Errorf("Content-Type %q, want application/grpc-web+proto", ct)
	}
	if s := grpcStatus(res, rep); s != "0" {
		t.Fatalf("grpc-status %q (%s), want 0", s, rep.trailers.Get("Grpc-Message"))
	}
	if len(rep.messages) != 1 {
		t.Fatalf("got %d messages, want 1", len(rep.messages))
	}
	var stats chatv1.GetStatsResponse
	if err := proto.Unmarshal(rep.messages[0], &stats); err != nil {
		t.Fatal(err)
	}
	if stats.TotalConnections != 1 {
		t.Errorf("total_connections = %d, want 1 (the WebSocket guest)", stats.TotalConnections)
	}

	// Errors come back as a gRPC status, as from any gRPC client.
	res, rep = grpcWebCall(t, srv.URL(""), "/chat.v1.ChatService/Broadcast", &chatv1.BroadcastRequest{Message: "hi"}, nil)
	if s := grpcStatus(res, rep); s != "16" {
		t.Errorf("Broadcast without a token: grpc-status %q, want 16 (Unauthenticated)", s)
	}
	res, rep = grpcWebCall(t, srv.URL(""), "/chat.v1.ChatService/Broadcast", &chatv1.BroadcastRequest{Message: "hi"},
		http.Header{"Authorization": {"Bearer " + srv.Token(t, "root", true)}})
	if s := grpcStatus(res, rep); s != "0" {
		t.Errorf("Broadcast as admin: grpc-status %q (%s), want 0", s, rep.trailers.Get("Grpc-Message"))
	}

	// Plain HTTP on a gRPC path is refused clearly.
	plain, err := http.Post(srv.URL("/chat.v1.ChatService/GetStats"), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("plain POST: status %d, want 415", plain.StatusCode)
	}
}

// Server streaming over gRPC-Web: the health service's Watch.
func TestGRPCWebServerStream(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	in, _ := proto.Marshal(&healthpb.HealthCheckRequest{})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL("/grpc.health.v1.Health/Watch"), bytes.NewReader(grpcWebFrame(0, in)))
	hr.Header.Set("Content-Type", "application/grpc-web+proto")
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// The stream stays open: read the first update only.
	flag, msg, err := readGRPCWebFrame(res.Body)
	if err != nil || flag != 0 {
		t.Fatalf("first frame: flag %#x, err %v; want a message", flag, err)
	}
	var st healthpb.HealthCheckResponse
	if err := proto.Unmarshal(msg, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health %v, want SERVING", st.Status)
	}
}

func TestGRPCWebCORS(t *testing.T) {
	srv := nodetest.Start(t, node.Config{AllowedOrigins: []string{"https://chat.example.com"}})
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://chat.example.com", true},
		{"https://evil.example", false},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			pre, _ := http.NewRequest(http.MethodOptions, srv.URL("/chat.v1.ChatService/GetStats"), nil)
			pre.Header.Set("Origin", tc.origin)
			pre.Header.Set("Access-Control-Request-Method", "POST")
			pre.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web,authorization")
			res, err := http.DefaultClient.Do(pre)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			got := res.Header.Get("Access-Control-Allow-Origin")
			if tc.ok && got != tc.origin {
				t.Errorf("preflight: Access-Control-Allow-Origin %q, want %q", got, tc.origin)
			}
			if !tc.ok && got != "" {
				t.Errorf("preflight: Access-Control-Allow-Origin %q, want none for a refused origin", got)
			}
			if tc.ok && !strings.Contains(strings.ToLower(res.Header.Get("Access-Control-Allow-Headers")), "authorization") {
				t.Errorf("preflight: Access-Control-Allow-Headers %q, want authorization allowed", res.Header.Get("Access-Control-Allow-Headers"))
			}

			call, rep := grpcWebCall(t, srv.URL(""), "/chat.v1.ChatService/GetStats", &chatv1.GetStatsRequest{}, http.Header{"Origin": {tc.origin}})
			got = call.Header.Get("Access-Control-Allow-Origin")
			if tc.ok != (got == tc.origin) {
				t.Errorf("call: Access-Control-Allow-Origin %q, want it only for an allowed origin", got)
			}
			if tc.ok && !strings.Contains(strings.ToLower(call.Header.Get("Access-Control-Expose-Headers")), "grpc-status") {
				t.Errorf("call: Access-Control-Expose-Headers %q, want grpc-status exposed", call.Header.Get("Access-Control-Expose-Headers"))
			}
			_ = rep
		})
	}
}

// grpcWebConnect is a Connect stream over gRPC-Web's WebSocket transport.
type grpcWebConnect struct {
	conn net.Conn
	send func(*chatv1.ClientFrame)
	// next returns the next server frame, or nil and the stream's end as
	// "grpc-status N message".
	next func() (*chatv1.ServerFrame, string)
}

// openGRPCWebConnect opens Connect on srv's HTTP port over gRPC-Web's
// WebSocket transport, with headers (lines "name: value", CRLF apart) as
// its metadata.
func openGRPCWebConnect(t *testing.T, srv *nodetest.Server, headers string) grpcWebConnect {
	t.Helper()
	d := ws.Dialer{Timeout: waitTimeout, Protocols: []string{"grpc-websockets"}}
	conn, br, _, err := d.Dial(context.Background(), "ws://"+srv.HTTPAddr+"/chat.v1.ChatService/Connect")
	if err != nil {
		t.Fatalf("dial grpc-websockets: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	var r io.Reader = conn
	if br != nil {
		r = br
	}
	rw := struct {
		io.Reader
		io.Writer
	}{r, conn}
	send := func(b []byte) {
		t.Helper()
		if err := wsutil.WriteClientBinary(conn, b); err != nil {
			t.Fatal(err)
		}
	}
	send([]byte("content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n" + headers + "\r\n"))
	// The server's messages carry a byte stream of gRPC-Web frames.
	pr, pw := io.Pipe()
	go func() {
		for {
			conn.SetReadDeadline(time.Now().Add(waitTimeout))
			b, _, err := wsutil.ReadServerData(rw)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			pw.Write(b)
		}
	}()
	t.Cleanup(func() { pr.Close() })
	return grpcWebConnect{conn: conn,
		send: func(f *chatv1.ClientFrame) {
			t.Helper()
			b, _ := proto.Marshal(f)
			send(append([]byte{0}, grpcWebFrame(0, b)...))
		},
		next: func() (*chatv1.ServerFrame, string) {
			t.Helper()
			for {
				flag, msg, err := readGRPCWebFrame(pr)
				if err != nil {
					t.Fatalf("grpc-web stream: %v", err)
				}
				if flag&0x80 != 0 {
					if h := parseTrailers(msg); h.Get("Grpc-Status") != "" {
						return nil, "grpc-status " + h.Get("Grpc-Status") + " " + h.Get("Grpc-Message")
					}
					continue // response headers
				}
				var f chatv1.ServerFrame
				if err := proto.Unmarshal(msg, &f); err != nil {
					t.Fatal(err)
				}
				return &f, ""
			}
		}}
}

// A gRPC-Web client cannot name its own address for the per-IP count: the
// metadata a bridge relays it in is believed on the gRPC port only. From
// loopback (trusted), with that header, it is still counted as itself.
func TestGRPCWebCannotNameItsAddress(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: node.Limits{Limits: hub.Limits{ConnsPerIP: 1}}})
	tg := &target{node: srv, wsBase: "ws://" + srv.HTTPAddr, host: srv.HTTPAddr}
	login(t, tg, "alice") // 127.0.0.1's one connection
	gw := openGRPCWebConnect(t, srv, "authorization: Bearer "+srv.Token(t, "bob", false)+"\r\n"+grpcapi.ClientIPMetadata+": 10.9.9.9")
	f, st := gw.next()
	if f != nil || !strings.Contains(st, "an address may open at most 1") {
		t.Errorf("gRPC-Web Connect naming 10.9.9.9: got %v %q, want it refused by 127.0.0.1's cap", f, st)
	}
}

// Connect, a bidirectional stream, over gRPC-Web's WebSocket transport; a
// bridge (JSON) client in the same room sees its messages and vice versa.
func TestGRPCWebWebSocketConnect(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	tg := &target{node: srv, wsBase: "ws://" + srv.HTTPAddr, host: srv.HTTPAddr}
	web := login(t, tg, "alice")
	web.join("lounge")

	gw := openGRPCWebConnect(t, srv, "authorization: Bearer "+srv.Token(t, "bob", false))
	sendFrame, next := gw.send, func() *chatv1.ServerFrame {
		t.Helper()
		f, st := gw.next()
		if st != "" {
			t.Fatalf("stream ended: %s", st)
		}
		return f
	}
	await := func(what string, match func(*chatv1.ServerFrame) bool) *chatv1.ServerFrame {
		t.Helper()
		for range 50 {
			if f := next(); match(f) {
				return f
			}
		}
		t.Fatalf("gRPC-Web client: no %s in 50 frames", what)
		return nil
	}
	if f := next(); f.GetSystem().GetUserId() != "bob" {
		t.Fatalf("first frame %v, want bob's welcome", f)
	}
	sendFrame(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: "lounge"}}})
	await("room_joined", func(f *chatv1.ServerFrame) bool { return f.GetRoomJoined().GetUserId() == "bob" })
	// The node counts each connection by its transport.
	m := nodetest.Scrape(t, srv.URL("/metrics"))
	for transport, want := range map[string]float64{"grpc-web": 1, "websocket": 1, "grpc": 0} {
		if got, _ := m.Value("tertulia_connections", "transport", transport); got != want {
			t.Errorf("tertulia_connections{transport=%q} = %v, want %v", transport, got, want)
		}
	}
	sendFrame(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: "lounge", Message: "from grpc-web"}}})
	if f := web.await("the gRPC-Web client's message", isMessage("from grpc-web")); f.str("sender") != "bob" {
		t.Errorf("browser got %v, want it from bob", f)
	}
	web.sendJSON(map[string]string{"room": "lounge", "message": "from the bridge"})
	await("the bridge client's message", func(f *chatv1.ServerFrame) bool { return f.GetMessage().GetMessage() == "from the bridge" })

	wsutil.WriteClientMessage(gw.conn, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	gw.conn.Close()
}

// A cross-origin page may not open gRPC-Web's WebSocket either.
func TestGRPCWebWebSocketOrigin(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	d := ws.Dialer{Timeout: waitTimeout, Protocols: []string{"grpc-websockets"},
		Header: ws.HandshakeHeaderHTTP(http.Header{"Origin": {"https://evil.example"}})}
	conn, _, _, err := d.Dial(context.Background(), "ws://"+srv.HTTPAddr+"/chat.v1.ChatService/Connect")
	if err == nil {
		conn.Close()
	}
	var se ws.StatusError
	if !errors.As(err, &se) || int(se) != http.StatusForbidden {
		t.Errorf("cross-origin grpc-websockets upgrade: %v, want HTTP 403", err)
	}
}
