package node_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
	"github.com/tertulia/tertulia/server/node/nodetest"
)

// An idle keep-alive HTTP connection is closed after the idle timeout.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: node.Limits{HTTPIdleTimeout: 200 * time.Millisecond}})
	nc := rawConn(t, srv.HTTPAddr)
	if _, err := io.WriteString(nc, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("GET /health: %d, close %v; want 200 on a kept-alive connection", res.StatusCode, res.Close)
	}
	// Nothing more is sent: the server must close the connection.
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection: read %d bytes, %v; want EOF once the idle timeout passed", n, err)
	}
}

// Over the per-user count, the next Connect stream is refused with
// ResourceExhausted and a reason.
func TestConnsPerUserOverGRPC(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: node.Limits{Limits: hub.Limits{ConnsPerUser: 2}}})
	connect(t, srv, "alice")
	connect(t, srv, "alice")
	c := dial(t, srv, srv.Token(t, "alice", false))
	s, err := c.Connect(context.Background())
	if err == nil {
		defer s.Close()
		select {
		case _, ok := <-s.Events():
			if ok {
				t.Fatalf("third session got a frame, want it refused")
			}
		case <-time.After(waitTimeout):
			t.Fatalf("third session neither refused nor welcomed")
		}
		err = s.Err()
	}
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "a user may open at most 2") {
		t.Errorf("third session: %v, want ResourceExhausted naming the limit", err)
	}
}

// A gRPC client that floods gets rate_limited frames, then its stream ends
// with ResourceExhausted "flood".
func TestFloodOverGRPC(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: node.Limits{Limits: hub.Limits{FloodTimeout: 500 * time.Millisecond}}})
	alice := connect(t, srv, "alice")
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if alice.s.Send("", "flood") != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-sent }()
	limited := 0
	for f := range alice.s.Events() {
		if f.GetError().GetCode() == hub.CodeRateLimited {
			limited++
		}
	}
	err := alice.s.Err()
	if limited == 0 || status.Code(err) != codes.ResourceExhausted || !strings.HasPrefix(status.Convert(err).Message(), hub.CodeFlood) {
		t.Errorf("%d rate_limited, then %v; want rate_limited, then ResourceExhausted %q", limited, err, hub.CodeFlood+"...")
	}
}

// A gRPC connection carries at most GRPCStreamsPerConn streams at once: a
// further one waits (the client's library queues it) until one ends.
func TestGRPCStreamsPerConn(t *testing.T) {
	srv := nodetest.Start(t, node.Config{Limits: node.Limits{GRPCStreamsPerConn: 2}})
	c := dial(t, srv, srv.Token(t, "alice", false))
	var open []func() error
	for range 2 {
		s, err := c.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if f := <-s.Events(); f.GetSystem() == nil {
			t.Fatalf("first frame %v, want the welcome", f)
		}
		open = append(open, s.Close)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if s, err := c.Connect(ctx); err == nil {
		if f, ok := <-s.Events(); ok {
			t.Fatalf("third stream on the connection got %v, want it held back", f)
		}
	}
	open[0]()
	s, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	select {
	case f := <-s.Events():
		if f.GetSystem() == nil {
			t.Fatalf("after one ended: first frame %v, want the welcome", f)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("after one stream ended, a new one was not welcomed within %v", waitTimeout)
	}
}

// The headers of a gRPC call are bounded as an HTTP request's head is, so
// that nobody can make the node hold megabytes of them before any token
// is looked at; a token of the largest size accepted still fits.
func TestGRPCHeadersAreBounded(t *testing.T) {
	srv := nodetest.Start(t, node.Config{})
	cc, err := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stats := func(md ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_, err := chatv1.NewChatServiceClient(cc).GetStats(metadata.AppendToOutgoingContext(ctx, md...), &chatv1.GetStatsRequest{})
		return err
	}
	bearer := "Bearer " + srv.Token(t, "alice", false)
	if err := stats("authorization", bearer, "x-pad", strings.Repeat("a", 4<<10)); err != nil {
		t.Fatalf("a call with 4 KiB of headers: %v, want it answered", err)
	}
	if err := stats("authorization", bearer, "x-pad", strings.Repeat("a", 64<<10)); err == nil {
		t.Error("a call with 64 KiB of headers was answered, want it refused")
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "big", "jti": strings.Repeat("b", 5904),
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(nodetest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tok); n <= 8000 || n > auth.DefaultMaxTokenBytes {
		t.Fatalf("token of %d bytes, want 8001..%d", n, auth.DefaultMaxTokenBytes)
	}
	if err := stats("authorization", "Bearer "+tok); err != nil {
		t.Errorf("a call with a token of %d bytes: %v, want it answered", len(tok), err)
	}
}

// A call whose request message does not come whole (a unary call, or a
// server-streaming one such as Health.Watch) is ended once the wait for it
// is over, before any token is looked at: nobody holds a stream, and what
// it sent, by sending the start of a message and no more. Before, the call
// stayed open for ever (the server's keepalive pings kept its connection
// alive).
func TestCallWithoutItsMessageIsEnded(t *testing.T) {
	srv := nodetest.Start(t, node.Config{RequestWait: 300 * time.Millisecond})
	for _, method := range []string{chatv1.ChatService_GetStats_FullMethodName, healthpb.Health_Watch_FullMethodName} {
		t.Run(method, func(t *testing.T) {
			nc := rawConn(t, srv.GRPCAddr)
			io.WriteString(nc, http2.ClientPreface)
			fr := http2.NewFramer(nc, nc)
			fr.WriteSettings()
			var head bytes.Buffer
			enc := hpack.NewEncoder(&head)
			for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", method},
				{":authority", "tertulia"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
				enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: head.Bytes(), EndHeaders: true})
			fr.WriteData(1, false, []byte{0, 0, 0, 0x10, 0}) // announces a 4 KiB message, sends none of it
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("the call was not ended: %v", err)
				}
				switch f := f.(type) {
				case *http2.SettingsFrame:
					if !f.IsAck() {
						fr.WriteSettingsAck()
					}
				case *http2.RSTStreamFrame:
					return
				case *http2.HeadersFrame:
					if f.StreamEnded() { // the trailers, with a status
						return
					}
				}
			}
		})
	}
}

// A gRPC-Web call, on the HTTP port, whose body does not come whole is
// ended once the wait for it is over, as a gRPC call's message is: before,
// it stayed open for as long as the client kept sending a byte at times.
func TestGRPCWebCallWithoutItsBodyIsEnded(t *testing.T) {
	srv := nodetest.Start(t, node.Config{RequestWait: 300 * time.Millisecond})
	nc := rawConn(t, srv.HTTPAddr)
	io.WriteString(nc, "POST "+chatv1.ChatService_GetStats_FullMethodName+" HTTP/1.1\r\nHost: tertulia\r\n"+
		"Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nContent-Length: 4096\r\n\r\n\x00\x00\x00\x0f\xfb")
	// Whatever the answer, it must come, and the connection end.
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Errorf("the call was not ended: %v", err)
	}
}

// rawConn dials addr for a test that speaks the protocol itself; every
// read and write must be done within waitTimeout.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(waitTimeout))
	return nc
}
